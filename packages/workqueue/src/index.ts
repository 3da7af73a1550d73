/**
 * `@cgtx/workqueue`: concurrency-managed workqueues whose workers are
 * kernel-thread tasks of a `@cgtx/core` host and run real JavaScript, aware
 * of the cgroup each work belongs to (strategies `migrate`, `pools`,
 * `remote-charge`), with lazy per-CPU threads as an option.
 *
 * @example
 * import * as E from 'fp-ts/lib/Either.js'
 * import { Host } from '@cgtx/core'
 * import { WorkqueueSystem, createWork, queueWork, flushWorkqueue } from '@cgtx/workqueue'
 *
 * const host = E.getOrElseW(() => { throw new Error('host') })(Host.create({ hierarchies: [{ name: 'unified', version: 'v2' }] }))
 * const system = E.getOrElseW(() => { throw new Error('system') })(WorkqueueSystem.create(host))
 * const wq = E.getOrElseW(() => { throw new Error('wq') })(system.createWorkqueue({ name: 'events' }))
 * const work = E.getOrElseW(() => { throw new Error('work') })(createWork(() => console.log('ran')))
 * queueWork(wq, work)
 * await flushWorkqueue(wq)
 *
 * @module @cgtx/workqueue
 */
export { WorkqueueSystem, type Controllers, type PoolSummary } from './system.ts'
export { Workqueue, destroyWorkqueue, drainWorkqueue, flushWorkqueue, queueCgroupWork, queueDelayedWork, queueWork } from './workqueue.ts'
export { cancelWorkSync, flushWork } from './workSync.ts'
export { Work, createWork, type WorkFailure, type WorkFunction } from './work.ts'
export { currentWork, type WorkContext } from './context.ts'
export { allocate, burn, forkFromWork, type Allocation } from './resources.ts'
export { fromBuiltins, type BuiltinControllers } from './controllers.ts'
export { CpuScheduler, unlimitedCpu, type Bandwidth, type CpuPolicy, type CpuStat } from './cpu.ts'
export {
  CgroupTarget,
  QueueOptions,
  Strategy,
  SystemOptions,
  Threads,
  WQ_DFL_ACTIVE,
  WQ_MAX_ACTIVE,
  WorkqueueFlags,
  WorkqueueOptions,
} from './codecs.ts'
