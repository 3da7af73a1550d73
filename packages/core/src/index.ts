/**
 * `@cgtx/core`: the cgroup hierarchy model and the prepare / commit / abort
 * attach transaction.
 *
 * @example
 * import * as E from 'fp-ts/lib/Either.js'
 * import { Host } from '@cgtx/core'
 *
 * const host = E.getOrElseW(() => { throw new Error('config') })(
 *   Host.create({ hierarchies: [{ name: 'unified', version: 'v2' }] }),
 * )
 * host.mkdirSync({ hierarchy: 'unified', path: '/app' })
 * const task = host.spawn('worker')
 * host.attachSync({ mode: 'process', pid: task.tid, to: { hierarchy: 'unified', path: '/app' } })
 *
 * @module @cgtx/core
 */
export { Host, type AbortOrder, type AttachReport, type ExitOptions, type ForkOptions, type HierarchySpec, type HostConfig, type KernelThreadOptions } from './host.ts'
export { Cgroup, Hierarchy, type CgroupType, type HierarchyVersion } from './cgroup.ts'
export { Css, CssSet } from './cssSet.ts'
export type { TaskList } from './taskList.ts'
export { Mm, Task, ThreadGroup, type TaskFlags, type TaskState } from './task.ts'
export type {
  AttachContext,
  AttachPhase,
  CallbackResult,
  ControlFile,
  FileContext,
  ForkContext,
  MigrationEntry,
  Subsystem,
} from './subsystem.ts'
export { fromKernelCallbacks, fromSinglePhase, type KernelCallbacks, type SinglePhaseCallbacks, type SubsystemBase, type Taskset } from './adapters.ts'
export { RwSemaphore, SleepLock, SpinLock, type Lock, type LockKind, type LockOwner } from './locks.ts'
export { LockValidator, type LockRule, type LockViolation } from './lockValidator.ts'
export { Trace, formatTimeline, type DetailFormat, type TraceEvent, type TraceOutcome, type TracePhase } from './trace.ts'
export { VirtualClock, realClock, type Clock, type Timer } from './clock.ts'
export { VirtualCgroupFs, FsPath, type CgroupFs } from './cgroupfs.ts'
export {
  AttachMode,
  AttachRequest,
  CgroupName,
  CgroupPath,
  CgroupRef,
  HierarchyName,
  PID_MAX_LIMIT,
  Pid,
  SchedPolicy,
  decode,
} from './codecs.ts'
export {
  badArgument,
  errnoOf,
  errnos,
  faultError,
  isCgtxError,
  systemError,
  type BadArgument,
  type CgtxError,
  type Errno,
  type Fault,
  type FaultKind,
  type SystemError,
} from './errors.ts'
export { kstrtoint, kstrtoll, strstrip } from './internal/kstrto.ts'
export type { MaybePromise } from './internal/settle.ts'
