/**
 * `@cgtx/subsystems`: the built-in controllers (cpuset, cpu, memory,
 * freezer, pids) with the kernel's semantics, {@link defineSubsystem} for
 * writing more, and the hierarchical counter they share. The conformance
 * kit is the `@cgtx/subsystems/testing` entry point.
 *
 * @example
 * import * as E from 'fp-ts/lib/Either.js'
 * import { VirtualCgroupFs } from '@cgtx/core'
 * import { createHost } from '@cgtx/subsystems'
 *
 * const { host } = E.getOrElseW(() => { throw new Error('host') })(createHost({ layout: 'v1' }))
 * const fs = new VirtualCgroupFs(host)
 * fs.mkdirSync('/pids/app')
 * fs.writeSync('/pids/app/pids.max', '2')
 *
 * @module @cgtx/subsystems
 */
export {
  defineSubsystem,
  errnoOfValidation,
  extend,
  failWith,
  movesOf,
  type AttachHook,
  type AttachHooks,
  type DefinedSubsystem,
  type FileSpec,
  type ForkHooks,
  type HookResult,
  type Move,
  type SubsystemDefinition,
  type WriteSpec,
} from './defineSubsystem.ts'
export { HierarchicalCounter } from './counter.ts'
/**
 * fp-ts's `Either` and its constructors, re-exported so a controller (and
 * its API) can be written with this package as its only import.
 */
export { left, right, isLeft, isRight, type Either } from 'fp-ts/lib/Either.js'
export { keyword, limitOrMax, memoryBytes, PAGE_COUNTER_MAX_BYTES, PAGE_SIZE, parseS64, parseU64, s64, u64, type FileCodec } from './codecs.ts'
export { pids, type PidsState, type PidsSubsystem } from './pids/index.ts'
export { memory, type MemoryCharge, type MemoryEvents, type MemoryState, type MemorySubsystem } from './memory/index.ts'
export {
  cpu,
  MAX_CFS_PERIOD_US,
  MAX_CFS_QUOTA_US,
  MAX_SHARES,
  MIN_CFS_PERIOD_US,
  MIN_CFS_QUOTA_US,
  MIN_SHARES,
  type CpuMax,
  type CpuOptions,
  type CpuState,
  type CpuSubsystem,
} from './cpu/index.ts'
export {
  cpuset,
  formatList,
  intersect,
  isSubset,
  listCodec,
  MAX_NUMNODES,
  overlaps,
  parseList,
  range,
  sameList,
  type CpuList,
  type CpusetOptions,
  type CpusetState,
  type CpusetSubsystem,
} from './cpuset/index.ts'
export { freezer, type FreezerState, type FreezerSubsystem } from './freezer/index.ts'
export { builtinSubsystems, createHost, v1Mounts, type BuiltinOptions, type Builtins, type HostOptions } from './builtin.ts'
