/**
 * The context a work runs in, carried by AsyncLocalStorage so that code deep
 * inside a work — code that never sees the work or the workqueue — can ask
 * which worker task runs it and in which cgroup its resources are to be
 * charged. Each worker enters its own storage slot once and updates it as it
 * takes works, so a synchronous work pays no AsyncLocalStorage call; the slot
 * describes the work the worker is running, which for an async work is its
 * own until it settles.
 *
 * @module context
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import type { Cgroup, Host, Task } from '@cgtx/core'
import type { Strategy } from './codecs.ts'
import type { Controllers } from './system.ts'
import type { Work } from './work.ts'

/** @internal What a worker's storage slot holds while it runs a work. */
export interface WorkerSlot {
  host: Host
  task: Task
  work: Work | undefined
  /** The workqueue of the running work (the last one run, between works). */
  owner: { readonly name: string; readonly strategy: Strategy | undefined } | undefined
  /** Cgroups the running instance was queued for (cgroup works only). */
  target: ReadonlyArray<Cgroup> | undefined
  /** CPU the worker is bound to, if it is a per-CPU worker. */
  cpu: number | undefined
  /** Allowed CPUs of the worker's pool (undefined: all). */
  cpus: ReadonlyArray<number> | undefined
  /** @internal Marks the worker running (not sleeping) while it burns CPU; set by the pool. */
  setRunning: (running: boolean) => void
  /** The system's resource controllers. */
  controllers: Controllers
  /** Consumes simulated CPU time on the scheduler, as this worker. */
  burn: (ms: number) => Promise<void>
}

/** @internal */
export const storage = new AsyncLocalStorage<WorkerSlot>()

/** What a running work can learn about where it runs. */
export interface WorkContext {
  readonly work: Work
  readonly workqueue: string
  /** The worker's kernel-thread task. */
  readonly worker: Task
  /** Strategy of the workqueue (undefined for a plain one). */
  readonly strategy: Strategy | undefined
  /** CPU of a per-CPU worker; undefined for unbound workers. */
  readonly cpu: number | undefined
  /** The cgroup the worker task is in on `hierarchy`. */
  cgroupIn(hierarchy: string): Cgroup | undefined
  /**
   * The cgroup charges made by this work land in on `hierarchy`: the worker's
   * own cgroup, except under `remote-charge`, where it is the work's cgroup
   * (when the work named one on that hierarchy).
   */
  chargeCgroup(hierarchy: string): Cgroup | undefined
}

const cgroupOf = (slot: WorkerSlot, hierarchy: string): Cgroup | undefined => {
  const found = slot.host.hierarchy(hierarchy)
  return found === undefined ? undefined : slot.task.cssSet.cgroup(found.index)
}

/** @internal Where charges of the slot's work land on `hierarchy`. */
export const chargeCgroupOf = (slot: WorkerSlot, hierarchy: string): Cgroup | undefined => {
  if (slot.owner?.strategy === 'remote-charge' && slot.target !== undefined) {
    const named = slot.target.find((cgroup) => cgroup.hierarchy.name === hierarchy)
    if (named !== undefined) return named
  }
  return cgroupOf(slot, hierarchy)
}

// The slot of the work running synchronously right now: read before the
// (costlier) AsyncLocalStorage lookup, which async continuations need.
let runningSlot: WorkerSlot | undefined

/** @internal Marks `slot` as running synchronously; returns the previous one to restore. */
export const setRunningSlot = (slot: WorkerSlot | undefined): WorkerSlot | undefined => {
  const previous = runningSlot
  runningSlot = slot
  return previous
}

/** @internal CPU of the per-CPU work running synchronously now, if any. */
export const runningCpu = (): number | undefined => runningSlot?.cpu

/** @internal The running slot, if called from inside a work. */
export const currentSlot = (): WorkerSlot | undefined => {
  if (runningSlot !== undefined) return runningSlot
  const slot = storage.getStore()
  return slot?.work === undefined ? undefined : slot
}

/**
 * The work being run by the caller's worker, or undefined outside a work.
 * Reads AsyncLocalStorage, so it works from any depth of the work's code.
 */
export const currentWork = (): WorkContext | undefined => {
  const slot = currentSlot()
  if (slot === undefined) return undefined
  const work = slot.work!
  return {
    work,
    workqueue: slot.owner!.name,
    worker: slot.task,
    strategy: slot.owner!.strategy,
    cpu: slot.cpu,
    cgroupIn: (hierarchy) => cgroupOf(slot, hierarchy),
    chargeCgroup: (hierarchy) => chargeCgroupOf(slot, hierarchy),
  }
}
