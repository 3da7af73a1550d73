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
import * as E from 'fp-ts/lib/Either.js'
import * as t from 'io-ts'
import { badArgument, type BadArgument, type Cgroup, type Timer } from '@cgtx/core'

/** What a work runs: synchronous or asynchronous JavaScript. It receives its own {@link Work}. */
export type WorkFunction = (work: Work) => void | PromiseLike<void>

/**
 * @internal Where a pending instance waits (`none`: pending without a
 * place, held by a cancel or about to be placed). Small integers: with the
 * PENDING bit they make one small-integer field, the kernel's data word,
 * stored without a GC write barrier.
 */
export const Place = { none: 0, timer: 1, worklist: 2, inactive: 3, scheduled: 4, mayday: 5, deferred: 6 } as const
/** @internal */
export type WorkPlace = (typeof Place)[keyof typeof Place]

// The data word: the place shifted left by one, PENDING in bit 0. Idle (0)
// is "not pending"; a run clears it whole, since a place means something only
// while pending.
const PENDING = 1
const IDLE = 0

const NO_FAILURES: ReadonlyArray<unknown> = Object.freeze([])

/** A work that threw or rejected; the worker carried on with the next one. */
export interface WorkFailure {
  readonly work: Work
  readonly workqueue: string
  readonly worker: number
  readonly error: unknown
  readonly at: number
}

/**
 * The state only the less common paths use: cancels, flushes, delayed and
 * cgroup queueing, lazy hand-over, requeueing while running, failures. A
 * work gets one on the first such use and keeps it. Most works never need
 * one, and without these fields a work is 88 bytes instead of 160: fewer
 * cache lines to load per work, and a no-op run is bound by memory traffic,
 * not instructions (bench/RESULTS.md, workqueue).
 */
class RareWorkState {
  canceling: Promise<boolean> | undefined = undefined
  pendingWaiters: Array<() => void> | undefined = undefined
  runWaiters: Array<() => void> | undefined = undefined
  cgroups: ReadonlyArray<Cgroup> | undefined = undefined
  handoverTo: number | undefined = undefined
  holder: unknown = undefined
  timer: Timer | undefined = undefined
  failures: Array<unknown> | undefined = undefined

  // The pending instance's flushWork waiters now wait for a run.
  pendingToRun(waiters: Array<() => void>): void {
    this.pendingWaiters = undefined
    if (this.runWaiters === undefined) this.runWaiters = waiters
    else this.runWaiters.push(...waiters)
  }
}

/** A work item. Create one with {@link createWork}. */
export class Work {
  // Fields in the order a queueing and a run touch them, 88 bytes in all;
  // everything else is in `rare`. Works made one after another lie next to
  // each other in memory, so a pass over many of them loads every byte of
  // each: the size is what counts.
  /** What the work runs. */
  readonly fn: WorkFunction
  // The PENDING bit and the place (see PENDING).
  private dataWord = IDLE
  /** @internal The pool_workqueue the pending instance belongs to. */
  pwq: unknown = undefined
  /** @internal Flush colour of the pending instance. */
  color = 0
  /** @internal Worker running an instance now. */
  runningOn: unknown = undefined
  private rare: RareWorkState | undefined = undefined
  /** Completed runs (including ones that threw). */
  runs = 0
  /** Its name, for reports. */
  readonly name: string

  /** @internal Use {@link createWork}. */
  constructor(fn: WorkFunction, name: string) {
    this.fn = fn
    this.name = name
  }

  /**
   * @internal Whether the work has no rare state: then it was queued for
   * no cgroup and no hand-over, and nobody waits for it. (Once a work has
   * rare state it keeps it, and the general path serves it.)
   */
  get ordinary(): boolean {
    return this.rare === undefined
  }

  // The accessors below read `undefined` while there is no rare state, and
  // storing `undefined` then makes none.
  private rareState(): RareWorkState {
    return (this.rare ??= new RareWorkState())
  }

  private setRare<K extends keyof RareWorkState>(field: K, value: RareWorkState[K]): void {
    if (value !== undefined || this.rare !== undefined) this.rareState()[field] = value
  }

  /** @internal Set while cancelWorkSync runs: PENDING stays set so queueing returns false. */
  get canceling(): Promise<boolean> | undefined {
    return this.rare?.canceling
  }
  set canceling(canceling: Promise<boolean> | undefined) {
    this.setRare('canceling', canceling)
  }

  /**
   * @internal flushWork waiters for the pending instance: they become its
   * run's waiters when it starts; if it is cancelled, they wake then, or
   * when the run going on then ends.
   */
  get pendingWaiters(): Array<() => void> | undefined {
    return this.rare?.pendingWaiters
  }
  set pendingWaiters(waiters: Array<() => void> | undefined) {
    this.setRare('pendingWaiters', waiters)
  }

  /** @internal Waiters for the running instance to finish (flushWork, cancelWorkSync). */
  get runWaiters(): Array<() => void> | undefined {
    return this.rare?.runWaiters
  }
  set runWaiters(waiters: Array<() => void> | undefined) {
    this.setRare('runWaiters', waiters)
  }

  /** @internal Cgroups the pending instance was queued for (one per hierarchy). */
  get cgroups(): ReadonlyArray<Cgroup> | undefined {
    return this.rare?.cgroups
  }
  set cgroups(cgroups: ReadonlyArray<Cgroup> | undefined) {
    this.setRare('cgroups', cgroups)
  }

  /** @internal Lazy workqueues: the CPU whose thread the core worker hands this instance to. */
  get handoverTo(): number | undefined {
    return this.rare?.handoverTo
  }
  set handoverTo(cpu: number | undefined) {
    this.setRare('handoverTo', cpu)
  }

  /** @internal The holder of the `timer` / `scheduled` / `mayday` places (meaningful only there). */
  get holder(): unknown {
    return this.rare?.holder
  }
  set holder(holder: unknown) {
    this.setRare('holder', holder)
  }

  /** @internal Delay timer of a pending delayed instance. */
  get timer(): Timer | undefined {
    return this.rare?.timer
  }
  set timer(timer: Timer | undefined) {
    this.setRare('timer', timer)
  }

  /** Runs that threw or rejected, most recent last. */
  get failures(): ReadonlyArray<unknown> {
    return this.rare?.failures ?? NO_FAILURES
  }

  /** @internal A run threw or rejected. */
  recordFailure(error: unknown): void {
    ;(this.rareState().failures ??= []).push(error)
  }

  /** True while an instance is queued (work_pending). */
  get isPending(): boolean {
    return this.pending
  }

  /** @internal PENDING bit. Clearing it forgets the place. */
  get pending(): boolean {
    return (this.dataWord & PENDING) !== 0
  }
  set pending(pending: boolean) {
    this.dataWord = pending ? this.dataWord | PENDING : IDLE
  }

  /** @internal Where the pending instance is (meaningful only while pending). */
  get place(): WorkPlace {
    return (this.dataWord >> 1) as WorkPlace
  }

  /** @internal The pending instance now waits in `place` (`none`: taken out, PENDING kept). */
  waitIn(place: WorkPlace): void {
    this.dataWord = (place << 1) | PENDING
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
    if ((this.dataWord & PENDING) !== 0) return false
    this.dataWord = PENDING
    return true
  }

  /**
   * @internal The pending instance starts running on `worker`: PENDING
   * clears (unless a cancel holds it), the holder of its place is let go,
   * and who waited for it now waits for the run. (Small, so that V8 inlines
   * it into the worker loop; the rare state is handled out of line.)
   */
  startRunning(worker: unknown): void {
    this.runningOn = worker
    if (this.rare === undefined) this.dataWord = IDLE
    else this.startRunningRare(this.rare)
  }

  private startRunningRare(rare: RareWorkState): void {
    if (rare.canceling === undefined) this.dataWord = IDLE
    rare.holder = undefined
    if (rare.pendingWaiters !== undefined) rare.pendingToRun(rare.pendingWaiters)
  }

  /** @internal The running instance finished: counted, and who waited for it (cancelWorkSync, flushWork) wakes. */
  finishRunning(): void {
    this.runningOn = undefined
    this.runs++
    if (this.rare !== undefined) this.wakeRunWaiters(this.rare)
  }

  private wakeRunWaiters(rare: RareWorkState): void {
    const waiters = rare.runWaiters
    if (waiters === undefined) return
    rare.runWaiters = undefined
    for (const resolve of waiters) resolve()
  }

  /**
   * @internal The pending instance was cancelled: who waited for it wakes,
   * or, while an earlier instance still runs, waits for that run instead
   * (flush_work returns with the work idle unless it was queued again).
   */
  pendingCancelled(): void {
    const rare = this.rare
    const waiters = rare?.pendingWaiters
    if (waiters === undefined) return
    if (this.runningOn !== undefined) return rare!.pendingToRun(waiters)
    rare!.pendingWaiters = undefined
    for (const resolve of waiters) resolve()
  }
}

const WorkFunctionCodec = t.Function

/**
 * @internal A non-work where a work was expected, as a {@link BadArgument}.
 * (A work is an object of this class: nothing else can stand for one.)
 */
export const notAWork = (work: unknown): E.Either<BadArgument, never> =>
  E.left(badArgument('work', work, 'a Work made by createWork'))

/** INIT_WORK: a work item running `fn`. A non-function is a {@link BadArgument}. */
export const createWork = (fn: unknown, name?: unknown): E.Either<BadArgument, Work> => {
  if (!WorkFunctionCodec.is(fn)) return E.left(badArgument('fn', fn, 'a function (work) => void | Promise<void>'))
  if (name !== undefined && typeof name !== 'string') return E.left(badArgument('name', name, 'string'))
  return E.right(new Work(fn as WorkFunction, name ?? (fn.name === '' ? 'work' : fn.name)))
}
