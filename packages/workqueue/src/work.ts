/**
 * Work items. A {@link Work} is a function plus the state the kernel keeps
 * in a `work_struct`'s data word: the PENDING bit, where the pending instance
 * sits (timer, worklist, overflow list, a worker's scheduled list, a
 * rescuer's mayday list), which worker runs it now, and for a cgroup work the
 * cgroups the pending instance was queued for. A work can be pending and
 * running at once (requeued while it runs) but is never run by two workers
 * at the same time.
 *
 * @module work
 */
import type { Cgroup } from '@cgtx/core'
import type { Timer } from '@cgtx/core'
import * as E from 'fp-ts/lib/Either.js'
import * as t from 'io-ts'
import { badArgument, type BadArgument } from '@cgtx/core'

/** What a work runs: synchronous or asynchronous JavaScript. It receives its own {@link Work}. */
export type WorkFunction = (work: Work) => void | PromiseLike<void>

/**
 * @internal Where a pending instance waits. Small integers rather than
 * strings: a work's place is stored several times per run, and a small
 * integer is stored without a GC write barrier.
 */
export const Place = { none: 0, timer: 1, worklist: 2, inactive: 3, scheduled: 4, mayday: 5, deferred: 6 } as const
/** @internal */
export type WorkPlace = (typeof Place)[keyof typeof Place]

const NO_FAILURES: ReadonlyArray<unknown> = Object.freeze([])

/** A work that threw or rejected; the worker carried on with the next one. */
export interface WorkFailure {
  readonly work: Work
  readonly workqueue: string
  readonly worker: number
  readonly error: unknown
  readonly at: number
}

/** A work item. Create one with {@link createWork}. */
export class Work {
  // The fields every queueing and every run touch come first, so that they
  // share as few cache lines as can be; the rare ones (delayed queueing,
  // cancels, failures) follow.
  /** What the work runs. */
  readonly fn: WorkFunction
  /** @internal PENDING bit. */
  pending = false
  /** @internal Where the pending instance is (meaningful only while pending: a run leaves it for the next queueing to set). */
  place: WorkPlace = Place.none
  /** @internal The pool_workqueue the pending instance belongs to. */
  pwq: unknown = undefined
  /** @internal Flush colour of the pending instance. */
  color = 0
  /** @internal Set while cancelWorkSync runs: PENDING stays set so queueing returns false. */
  canceling: Promise<boolean> | undefined = undefined
  /**
   * @internal flushWork waiters for the pending instance: they become its
   * run's waiters when it starts, and wake at once if it is cancelled.
   */
  pendingWaiters: Array<() => void> | undefined = undefined
  /** @internal Worker running an instance now. */
  runningOn: unknown = undefined
  /** @internal Cgroups the pending instance was queued for (one per hierarchy). */
  cgroups: ReadonlyArray<Cgroup> | undefined = undefined
  /** @internal Lazy workqueues: the CPU whose thread the core worker hands this instance to. */
  handoverTo: number | undefined = undefined
  /** @internal Waiters for the running instance to finish (flushWork, cancelWorkSync). */
  runWaiters: Array<() => void> | undefined = undefined
  /** Completed runs (including ones that threw). */
  runs = 0
  /** @internal The holder of the `timer` / `scheduled` / `mayday` places (meaningful only there). */
  holder: unknown = undefined
  /** @internal Delay timer of a pending delayed instance. */
  timer: Timer | undefined = undefined
  /** @internal CPU asked for when queued (delayed works remember it until the timer fires). */
  cpu: number | undefined = undefined
  // Made on the first failure: most works never fail, and an empty array per work is a fifth more memory.
  private failureList: Array<unknown> | undefined = undefined
  /** Its name, for reports. */
  readonly name: string

  /** @internal Use {@link createWork}. */
  constructor(fn: WorkFunction, name: string) {
    this.fn = fn
    this.name = name
  }

  /** Runs that threw or rejected, most recent last. */
  get failures(): ReadonlyArray<unknown> {
    return this.failureList ?? NO_FAILURES
  }

  /** @internal A run threw or rejected. */
  recordFailure(error: unknown): void {
    ;(this.failureList ??= []).push(error)
  }

  /** True while an instance is queued (work_pending). */
  get isPending(): boolean {
    return this.pending
  }

  /** True while a worker runs it. */
  get isRunning(): boolean {
    return this.runningOn !== undefined
  }

  /**
   * @internal test_and_set_bit(WORK_STRUCT_PENDING): claims the work for a
   * new instance. False if one is pending already (nothing changes then).
   */
  claimPending(): boolean {
    if (this.pending) return false
    this.pending = true
    return true
  }

  /** @internal The pending instance starts running: who waited for it now waits for the run. */
  pendingStarts(): void {
    const waiters = this.pendingWaiters!
    this.pendingWaiters = undefined
    if (this.runWaiters === undefined) this.runWaiters = waiters
    else this.runWaiters.push(...waiters)
  }

  /** @internal The pending instance was cancelled: who waited for it wakes. */
  pendingCancelled(): void {
    const waiters = this.pendingWaiters
    this.pendingWaiters = undefined
    if (waiters !== undefined) for (const resolve of waiters) resolve()
  }

  /** @internal The running instance finished: wake who waited for it (cancelWorkSync, flushWork). */
  wakeRunWaiters(): void {
    const runWaiters = this.runWaiters!
    this.runWaiters = undefined
    for (const resolve of runWaiters) resolve()
  }
}

const WorkFunctionCodec = t.Function
/** Decodes a work argument: a {@link Work} made by {@link createWork}. */
export const WorkCodec = new t.Type<Work, Work, unknown>(
  'Work',
  (u): u is Work => u instanceof Work,
  (u, c) => (u instanceof Work ? t.success(u) : t.failure(u, c)),
  t.identity,
)

/** INIT_WORK: a work item running `fn`. A non-function is a {@link BadArgument}. */
export const createWork = (fn: unknown, name?: unknown): E.Either<BadArgument, Work> => {
  if (!WorkFunctionCodec.is(fn)) return E.left(badArgument('fn', fn, 'a function (work) => void | Promise<void>'))
  if (name !== undefined && typeof name !== 'string') return E.left(badArgument('name', name, 'string'))
  return E.right(new Work(fn as WorkFunction, name ?? (fn.name === '' ? 'work' : fn.name)))
}
