/**
 * The attach transaction engine: prepareSleep → prepareSpin → commit point →
 * commit → attach → (locks drop) → postAttach, with abortSpin / abortSleep
 * on failure, exactly as the phase table in DESIGN.md specifies.
 *
 * Sync-first: every step runs synchronously and returns its result unless
 * something must wait (a contended lock, a callback that returns a promise);
 * only then does it return a promise that continues from that point. An
 * uncontended transaction through synchronous subsystems creates no promise.
 *
 * One {@link Transaction} object carries an attach from the request to its
 * end, and the subsystems' contexts are made once per host and pointed at
 * the running transaction (the group mutex lets only one run at a time, and
 * a context, like the kernel's on-stack taskset, is valid only during the
 * callbacks): the synchronous path allocates little besides its report.
 */
import * as E from 'fp-ts/lib/Either.js'
import type { Cgroup } from '../cgroup.ts'
import { realClock } from '../clock.ts'
import { AttachRequest, decode, isPid, type AttachMode } from '../codecs.ts'
import type { Css, CssSet } from '../cssSet.ts'
import { badArgument, faultError, isCgtxError, systemError, type CgtxError, type Errno, type Fault, type SystemError } from '../errors.ts'
import type { Host } from '../host.ts'
import type { LockRule } from '../lockValidator.ts'
import type { Lock, SleepLock, SpinLock } from '../locks.ts'
import { Trace, traceCode } from '../trace.ts'
import type { AttachContext, AttachPhase, CallbackResult, MigrationEntry, Subsystem } from '../subsystem.ts'
import type { Mm, Task, ThreadGroup } from '../task.ts'
import { noCallbacks, phaseBit, phasesOf, type AttachCallbacks } from './callbacks.ts'
import { isPromiseLike, type MaybePromise } from './settle.ts'

/** What a successful transaction did. */
export interface AttachReport {
  readonly transaction: number
  /** Tids that changed css_set. */
  readonly moved: ReadonlyArray<number>
  /** Tids skipped because they were exiting. */
  readonly skipped: ReadonlyArray<number>
  /** Subsystems whose css changed, i.e. the ones called, in call order. */
  readonly subsystems: ReadonlyArray<string>
}

/** Where a synchronous caller reads the result a transaction reached before it had to wait. */
export interface EarlyResult {
  result?: E.Either<CgtxError, AttachReport> | undefined
}

/** How the engine runs: may it wait, and where a synchronous caller reads an early result. */
export interface MigrateOptions {
  readonly sleep: boolean
  readonly guard?: EarlyResult
}

/** Subsystems whose css a transaction changes: ids in call order, their names for the report, the contexts called. */
export interface ChangedSubsystems {
  readonly ids: ReadonlyArray<number>
  readonly names: ReadonlyArray<string>
  /** The phases at least one of them has a callback for ({@link phaseBit}); the others are skipped. */
  readonly phases: number
  /** The contexts of those with attach callbacks, in id order. */
  readonly contexts: ReadonlyArray<SubsystemContext>
}

/**
 * Who moves: a thread or a process named by pid or held as a Task, or every
 * task of a cgroup named by path (in the first destination's hierarchy) or held.
 */
export type Subject =
  | { readonly mode: 'thread' | 'process'; readonly task: number | Task }
  | { readonly mode: 'all'; readonly from: string | Cgroup }

// A lock rule broken inside a callback; thrown through the plugin's code and
// caught around the callback.
class LockRuleBroken {
  constructor(readonly rule: LockRule, readonly message: string) {}
}

// What a callback threw (or a promise rejected with), told apart from any
// value a callback may return by its class.
class Thrown {
  constructor(readonly error: unknown) {}
}

type Held = { readonly lock: Lock; readonly release: () => void; readonly by: number }
type Outcome = MaybePromise<E.Either<SystemError, AttachReport>>
type SleepingPhase = 'abortSleep' | 'attach' | 'postAttach'
type Ref = { readonly hierarchy: string; readonly path: string }

// Trace codes of the events every successful transaction records; the core's own events are under index 0.
const CORE = 0
const BEGIN_OK = traceCode('begin', 'ok')
const PREPARE_SLEEP_OK = traceCode('prepareSleep', 'ok')
const PREPARE_SPIN_OK = traceCode('prepareSpin', 'ok')
const ABORT_SPIN_OK = traceCode('abortSpin', 'ok')
const ABORT_SLEEP_OK = traceCode('abortSleep', 'ok')
const COMMIT_POINT_OK = traceCode('commit-point', 'ok')
const COMMIT_OK = traceCode('commit', 'ok')
const ATTACH_OK = traceCode('attach', 'ok')
const POST_ATTACH_OK = traceCode('postAttach', 'ok')
const END_OK = traceCode('end', 'ok')

const okCode = (phase: SleepingPhase): number => (phase === 'attach' ? ATTACH_OK : phase === 'postAttach' ? POST_ATTACH_OK : ABORT_SLEEP_OK)

const noTids: ReadonlyArray<number> = Object.freeze([])
const noEntries: ReadonlyArray<MigrationEntry> = Object.freeze([])
const noContexts: ReadonlyArray<SubsystemContext> = Object.freeze([])
const noCgroups: ReadonlyArray<Cgroup> = Object.freeze([])
const noGroups: ReadonlyArray<ThreadGroup> = Object.freeze([])

// The trace of transactions that record nothing: always disabled, so it never
// reads its clock or stores an event.
const untraced = new Trace(realClock, 16)
untraced.enabled = false

/**
 * @internal One attach from the group mutex to its end: who moves, where to,
 * the taskset, the phase reached, and every lock taken (it owns them all).
 */
export class Transaction implements EarlyResult {
  id = 0
  /** The early result for a synchronous caller (see {@link EarlyResult}). */
  result: E.Either<CgtxError, AttachReport> | undefined = undefined
  guard: EarlyResult = this
  /** Holds the group mutex and the thread-group locks: this transaction, or the caller that took them for it. */
  groupOwner: object = this
  locked: ReadonlyArray<ThreadGroup> = noGroups
  leader: Task | undefined = undefined
  source: Cgroup | undefined = undefined
  tasks: ReadonlyArray<MigrationEntry> = noEntries
  skipped: Array<number> | undefined = undefined
  changed: ChangedSubsystems | undefined = undefined
  contexts: ReadonlyArray<SubsystemContext> = noContexts
  held: Array<Held> | undefined = undefined
  // Created on first use: most transactions take no mmap lock.
  mmapCounts: Map<Mm, number> | undefined = undefined
  spin = false
  phase: AttachPhase = 'prepareSleep'
  violation: { readonly rule: LockRule; readonly subsystem: string; readonly message: string } | undefined = undefined
  outcome: 'committed' | 'aborted' | undefined = undefined
  // Subsystems prepared so far: always a prefix of `contexts` (a failing one is not counted).
  preparedSleep = 0
  preparedSpin = 0
  // The callbacks of the abort and sleeping phases in call order.
  order: ReadonlyArray<SubsystemContext> = noContexts
  // The index in the current phase's order of the callback running, or -1.
  calling = -1
  failure: SystemError | undefined = undefined
  // The result once committed.
  committed: E.Right<AttachReport> | undefined = undefined
  // Built only when an error or the trace needs it: the happy path formats nothing.
  described: string | undefined = undefined
  /** Where its events go: the host's trace, or nowhere for a kernel thread's move (see {@link Trace.kernelThreads}). */
  trace: Trace

  constructor(
    readonly host: Host,
    readonly sleep: boolean,
    readonly mode: AttachMode,
    /** The thread or process (mode thread / process), or the source cgroup (mode all). */
    readonly subject: number | Task | string | Cgroup,
    readonly destinations: ReadonlyArray<Cgroup>,
  ) {
    this.trace = host.trace
  }

  /** What this transaction does, for errors and the trace. */
  operation(): string {
    return (this.described ??= describeAttach(this.mode, this.subject, this.destinations.map(refOf)))
  }

  /** Runs the transaction: synchronously unless it has to wait (and may). */
  run(): MaybePromise<E.Either<CgtxError, AttachReport>> {
    const host = this.host
    if (host.mutex.tryAcquire(this)) return this.underMutex()
    if (!this.sleep) return E.left(systemError('EAGAIN', this.operation(), { reason: 'would block on cgroup_mutex' }))
    return Promise.resolve(host.mutex.acquire(this)).then(() => this.underMutex())
  }

  /**
   * Runs a transaction made with `sleep: false`: the result, or the one it
   * reached before a stray promise kept it running (EAGAIN if none).
   */
  runNow(): E.Either<CgtxError, AttachReport> {
    const outcome = this.run()
    if (!isPromiseLike(outcome)) return outcome
    return this.result ?? E.left(systemError('EAGAIN', this.operation(), { reason: 'would sleep' }))
  }

  // Holding the group mutex; releases it (and any thread-group lock) once the
  // transaction is over, now or later.
  private underMutex(): MaybePromise<E.Either<CgtxError, AttachReport>> {
    let result: MaybePromise<E.Either<CgtxError, AttachReport>>
    try {
      result = this.findAndLock()
    } catch (error) {
      this.releaseMutex()
      throw error
    }
    if (!isPromiseLike(result)) {
      this.releaseMutex()
      return result
    }
    return Promise.resolve(result).finally(() => this.releaseMutex())
  }

  private releaseMutex(): void {
    for (const group of this.locked) if (group.lock.writeOwner === this) group.lock.releaseWrite(this)
    this.host.mutex.release(this)
  }

  // Find the task(s) under the mutex, as cgroup_procs_write_start does, and
  // keep fork / exec / exit out of every process involved.
  private findAndLock(): MaybePromise<E.Either<CgtxError, AttachReport>> {
    const { host, subject } = this
    this.id = host.newTransaction()
    for (const cgroup of this.destinations) if (cgroup.dead) return E.left(systemError('ENODEV', this.operation()))
    if (this.mode === 'all') {
      const from = subject as string | Cgroup
      this.source = typeof from === 'string' ? this.destinations[0]!.hierarchy.lookup(from) : from.dead ? undefined : from
      if (this.source === undefined) return E.left(systemError('ENOENT', this.operation()))
    } else {
      let leader = typeof subject === 'number' ? host.task(subject) : (subject as Task)
      if (leader === undefined || leader.state === 'reaped') return E.left(systemError('ESRCH', this.operation()))
      if (this.mode === 'process') leader = leader.group.leader
      if (leader.flags.noSetAffinity) return E.left(systemError('EINVAL', this.operation(), { reason: 'PF_NO_SETAFFINITY' }))
      this.leader = leader
      if (leader.flags.kthread && !host.trace.kernelThreads) this.trace = untraced
    }
    // One process and nobody queued: the common case, no set, no sort.
    if (this.source === undefined && this.leader!.group.lock.tryWrite(this)) {
      this.locked = [this.leader!.group]
      return this.buildAndRun(true)
    }
    const locked: Array<ThreadGroup> = []
    this.locked = locked
    const done = lockThreadGroups(this.leader, this.source === undefined ? noCgroups : [this.source], this, locked, this.sleep)
    return isPromiseLike(done) ? Promise.resolve(done).then((locked) => this.buildAndRun(locked)) : this.buildAndRun(done)
  }

  // Vet the destinations, build the taskset (live tasks whose css_set changes), run the phases.
  private buildAndRun(locked: boolean): MaybePromise<E.Either<CgtxError, AttachReport>> {
    const { host, mode, destinations, leader } = this
    if (!locked) return E.left(systemError('EAGAIN', this.operation(), { reason: 'would block on the thread-group lock' }))
    for (const dst of destinations) {
      const refused = vetDestination(host, dst, mode, leader)
      if (refused !== undefined) return E.left(systemError(refused.errno, this.operation(), { reason: refused.reason }))
    }
    let entries: Array<MigrationEntry>
    // One task (a thread, or a process of one): an array of its exact size.
    if (mode === 'thread' || (mode === 'process' && leader!.group.threads.size === 1)) {
      const entry = this.entryOf(leader!)
      entries = entry === undefined ? [] : [entry]
    } else {
      entries = []
      for (const task of mode === 'process' ? leader!.group.threads : this.source!.tasks()) {
        const entry = this.entryOf(task)
        if (entry !== undefined) entries.push(entry)
      }
    }
    if (entries.length === 0) return E.right({ transaction: this.id, moved: [], skipped: this.skipped ?? noTids, subsystems: [] })
    this.trace.tick()
    if (mode === 'all' || destinations.length > 1) this.trace.record(this.id, undefined, 'begin', 'ok', this.operation())
    else this.trace.recordFormattedCode(this.id, CORE, BEGIN_OK, describeBegin, mode === 'thread' ? leader!.tid : -leader!.tid, destinations[0])
    return this.runPhases(entries)
  }

  // The task's move, unless it is not running (an exiting one is reported skipped) or stays put.
  private entryOf(task: Task): MigrationEntry | undefined {
    if (task.state !== 'running') {
      if (task.state === 'exiting') (this.skipped ??= []).push(task.tid)
      return undefined
    }
    const to = destinationCssSet(this.host, task.cssSet, this.destinations)
    return to === task.cssSet ? undefined : { task, from: task.cssSet, to }
  }

  /** The phases over a built taskset; the caller holds the mutex and has recorded `begin`. */
  runPhases(entries: ReadonlyArray<MigrationEntry>): Outcome {
    this.tasks = entries
    // A subsystem whose css changes but that has no attach callback is reported, not called.
    const changed = changedSubsystems(this.host, entries)
    this.changed = changed
    this.contexts = changed.contexts
    // No subsystem whose css changes has a callback (say, a move within a
    // hierarchy without controllers): every phase would call nobody, so the
    // commit point alone runs before the end; the thread-group locks drop
    // when their owner releases the mutex, as no postAttach runs between.
    if (changed.phases === 0) {
      this.switchCssSets()
      return this.end()
    }
    for (const ctx of changed.contexts) {
      ctx.tx = this
      ctx.privateState = undefined
    }
    try {
      return this.prepareSleep(0)
    } catch (error) {
      return this.afterThrow(error)
    }
  }

  // ------------------------------------------------------------- phases
  //
  // Callbacks are called bare, with `calling` naming the one running: one
  // catch around the whole run (here and around each continuation after a
  // wait) turns a throw into that callback's outcome and resumes the phases
  // after it. A try around every call would cost more than the call.

  // Calls `callback` as the one at `at` of the current phase's order.
  private call(callback: (ctx: AttachContext<unknown>) => unknown, ctx: SubsystemContext, at: number): unknown {
    this.calling = at
    const outcome = callback.call(ctx.subsystem, ctx)
    this.calling = -1
    return outcome
  }

  // A continuation after a wait, under the same catch as the synchronous run.
  private guarded(step: () => Outcome): Outcome {
    try {
      return step()
    } catch (error) {
      return this.afterThrow(error)
    }
  }

  // What a callback threw is its outcome; the phase goes on after it. A throw
  // outside any callback is the engine's own and goes on up.
  private afterThrow(error: unknown): Outcome {
    const at = this.calling
    if (at < 0) throw error
    this.calling = -1
    const thrown = new Thrown(error)
    return this.guarded(() => {
      switch (this.phase) {
        case 'prepareSleep':
          return this.preparedSleepOne(this.contexts[at]!, thrown, undefined) ? this.prepareSleep(at + 1) : this.abort()
        case 'prepareSpin':
          return this.refuseSpin(this.contexts[at]!, failureOf(this, this.contexts[at]!.subsystem, 'prepareSpin', thrown)!)
        case 'abortSpin':
          recordInfallible(this, this.order[at]!, 'abortSpin', ABORT_SPIN_OK, thrown, false)
          return this.abortSpin(at + 1)
        case 'commit':
          recordInfallible(this, this.contexts[at]!, 'commit', COMMIT_OK, thrown, false)
          return this.commit(at + 1)
        case 'abortSleep':
        case 'attach':
        case 'postAttach':
          recordInfallible(this, this.order[at]!, this.phase, okCode(this.phase), thrown, true)
          return this.sleepingPhase(this.phase, this.order, at + 1)
      }
    })
  }

  private prepareSleep(from: number): Outcome {
    const contexts = this.contexts
    this.phase = 'prepareSleep'
    // A phase nobody has a callback for is skipped: everyone is prepared.
    if ((this.changed!.phases & phaseBit.prepareSleep) === 0) {
      this.preparedSleep = contexts.length
      return this.prepareSpin(0)
    }
    for (let i = from; i < contexts.length; i++) {
      const ctx = contexts[i]!
      const prepare = ctx.callbacks.prepareSleep
      if (prepare === undefined) {
        this.preparedSleep++
        continue
      }
      const outcome = this.call(prepare, ctx, i)
      if (isPromiseLike(outcome)) {
        // In a synchronous attach a sleeping prepare is a fault; the caller
        // gets it now, and the stray is waited for (and undone) before the
        // group mutex is released.
        let slept: SystemError | undefined
        if (!this.sleep) {
          slept = faultError(this.operation(), { kind: 'slept', subsystem: ctx.subsystem.name, phase: 'prepareSleep', detail: 'returned a promise in a synchronous attach' })
          this.guard.result ??= E.left(slept)
        }
        return settle(outcome).then((settled) =>
          this.guarded(() => {
            this.trace.tick()
            return this.preparedSleepOne(ctx, settled, slept) ? this.prepareSleep(i + 1) : this.abort()
          }),
        )
      }
      if (!this.preparedSleepOne(ctx, outcome, undefined)) return this.abort()
    }
    return this.prepareSpin(0)
  }

  // Records one prepareSleep outcome; false if the transaction fails here.
  private preparedSleepOne(ctx: SubsystemContext, outcome: unknown, slept: SystemError | undefined): boolean {
    const refused = failureOf(this, ctx.subsystem, 'prepareSleep', outcome)
    if (refused === undefined) this.preparedSleep++
    const failure = refused ?? slept
    if (failure === undefined) {
      this.trace.recordCode(this.id, ctx.who, PREPARE_SLEEP_OK)
      return true
    }
    this.failure = failure
    this.trace.record(this.id, ctx.subsystem.name, 'prepareSleep', failure.fault !== undefined ? 'fault' : 'failed', describeFailure(failure))
    return false
  }

  // Synchronous only: a promise or a sleeping lock is a fault.
  private prepareSpin(from: number): Outcome {
    const contexts = this.contexts
    this.phase = 'prepareSpin'
    this.spin = true
    if ((this.changed!.phases & phaseBit.prepareSpin) === 0) {
      this.preparedSpin = contexts.length
      return this.commitPoint()
    }
    for (let i = from; i < contexts.length; i++) {
      const ctx = contexts[i]!
      const prepare = ctx.callbacks.prepareSpin
      if (prepare === undefined) {
        this.preparedSpin++
        continue
      }
      const outcome = this.call(prepare, ctx, i)
      if (isPromiseLike(outcome)) {
        const failure = faultError(this.operation(), { kind: 'slept', subsystem: ctx.subsystem.name, phase: 'prepareSpin', detail: 'returned a promise' })
        this.failure = failure
        if (!this.sleep) this.guard.result ??= E.left(failure)
        this.trace.record(this.id, ctx.subsystem.name, 'prepareSpin', 'fault', describeFailure(failure))
        // Wait for the stray to settle; if it succeeded it must be undone too.
        return settle(outcome).then((settled) =>
          this.guarded(() => {
            this.trace.tick()
            if (failureOf(this, ctx.subsystem, 'prepareSpin', settled) === undefined && this.violation === undefined) this.preparedSpin++
            return this.abort()
          }),
        )
      }
      const refused = failureOf(this, ctx.subsystem, 'prepareSpin', outcome)
      if (refused !== undefined) return this.refuseSpin(ctx, refused)
      this.preparedSpin++
      this.trace.recordCode(this.id, ctx.who, PREPARE_SPIN_OK)
    }
    return this.commitPoint()
  }

  private refuseSpin(ctx: SubsystemContext, refused: SystemError): Outcome {
    this.failure = refused
    this.trace.record(this.id, ctx.subsystem.name, 'prepareSpin', refused.fault !== undefined ? 'fault' : 'failed', describeFailure(refused))
    return this.abort()
  }

  // abortSpin on those whose prepareSpin succeeded, then abortSleep.
  private abort(): Outcome {
    this.outcome = 'aborted'
    this.order = ordered(this.host.abortOrder, this.contexts.slice(0, this.preparedSpin))
    return this.abortSpin(0)
  }

  private abortSpin(from: number): Outcome {
    this.phase = 'abortSpin'
    const order = this.order
    for (let i = from; i < order.length; i++) {
      const ctx = order[i]!
      const abort = ctx.callbacks.abortSpin
      if (abort !== undefined) recordInfallible(this, ctx, 'abortSpin', ABORT_SPIN_OK, this.call(abort, ctx, i), false)
    }
    this.spin = false
    return this.sleepingPhase('abortSleep', ordered(this.host.abortOrder, this.contexts.slice(0, this.preparedSleep)), 0)
  }

  // The commit point, then the commit phase.
  private commitPoint(): Outcome {
    this.switchCssSets()
    return this.commit(0)
  }

  // The commit point: the tasks switch css_set and the transaction has succeeded.
  private switchCssSets(): void {
    const { host, tasks } = this
    for (const entry of tasks) host.moveTask(entry.task, entry.to)
    this.outcome = 'committed'
    this.trace.recordFormattedCode(this.id, CORE, COMMIT_POINT_OK, describeTaskCount, tasks.length, undefined)
    const report: AttachReport = { transaction: this.id, moved: tidsOf(tasks), skipped: this.skipped ?? noTids, subsystems: this.changed!.names }
    this.committed = E.right(report) as E.Right<AttachReport>
    // A synchronous caller left waiting on a stray (in attach) reads it now.
    if (!this.sleep) this.guard.result = this.committed
  }

  // Commit cannot fail: a throw is recorded and the rest still commit.
  private commit(from: number): Outcome {
    const contexts = this.contexts
    this.phase = 'commit'
    if ((this.changed!.phases & phaseBit.commit) !== 0) {
      for (let i = from; i < contexts.length; i++) {
        const ctx = contexts[i]!
        const commit = ctx.callbacks.commit
        if (commit !== undefined) recordInfallible(this, ctx, 'commit', COMMIT_OK, this.call(commit, ctx, i), false)
      }
    }
    this.spin = false
    this.releaseAll()
    // Post-commit: may sleep, cannot fail.
    return this.sleepingPhase('attach', contexts, 0)
  }

  // After the thread-group locks drop, for every called subsystem, success or failure.
  private postAttach(): Outcome {
    // The caller's release skips groups no longer held by the owner.
    for (const group of this.locked) group.lock.releaseWrite(this.groupOwner)
    return this.sleepingPhase('postAttach', this.contexts, 0)
  }

  private end(): Outcome {
    const failure = this.failure
    if (failure !== undefined) {
      this.trace.record(this.id, undefined, 'end', failure.fault !== undefined ? 'fault' : 'failed', describeFailure(failure))
      return E.left(failure)
    }
    this.trace.recordFormattedCode(this.id, CORE, END_OK, describeMoved, this.tasks.length, undefined)
    return this.committed!
  }

  /**
   * A phase whose callbacks may sleep and cannot fail (abortSleep, attach,
   * postAttach): each in `order` from `from`, waiting where one returns a
   * promise; then the locks taken are released and the next phase runs.
   */
  private sleepingPhase(phase: SleepingPhase, order: ReadonlyArray<SubsystemContext>, from: number): Outcome {
    this.phase = phase
    this.order = order
    // A phase nobody has a callback for is skipped.
    if ((this.changed!.phases & (phase === 'attach' ? phaseBit.attach : phase === 'postAttach' ? phaseBit.postAttach : phaseBit.abortSleep)) !== 0) {
      const ok = okCode(phase)
      for (let i = from; i < order.length; i++) {
        const ctx = order[i]!
        // Named loads (not callbacks[phase]): V8 keeps them monomorphic.
        const callback = phase === 'attach' ? ctx.callbacks.attach : phase === 'postAttach' ? ctx.callbacks.postAttach : ctx.callbacks.abortSleep
        if (callback === undefined) continue
        const outcome = this.call(callback, ctx, i)
        if (isPromiseLike(outcome))
          return settle(outcome).then((settled) =>
            this.guarded(() => {
              this.trace.tick()
              recordInfallible(this, ctx, phase, ok, settled, true)
              return this.sleepingPhase(phase, order, i + 1)
            }),
          )
        recordInfallible(this, ctx, phase, ok, outcome, true)
      }
    }
    this.releaseAll()
    // abortSleep and attach are followed by postAttach, postAttach by the end.
    return phase === 'postAttach' ? this.end() : this.postAttach()
  }

  // ------------------------------------------------- locks of subsystems

  heldLocks(): Array<Lock> {
    return this.held === undefined ? [] : this.held.map((entry) => entry.lock)
  }

  hold(lock: Lock, by: number, release: () => void): void {
    this.held ??= []
    this.held.push({ lock, by, release })
  }

  breakRule(subsystem: string, rule: LockRule, lock: Lock, extra: { holder?: string; cycle?: ReadonlyArray<string> } = {}): never {
    const violation = this.host.validator.report({
      rule,
      transaction: this.id,
      subsystem,
      phase: this.phase,
      lock: lock.name,
      ...extra,
    })
    this.violation ??= { rule, subsystem, message: violation.message }
    throw new LockRuleBroken(rule, violation.message)
  }

  checkOrder(subsystem: string, lock: Lock): void {
    const cycle = this.host.validator.checkOrder(this.heldLocks(), lock)
    if (cycle !== undefined) this.breakRule(subsystem, 'order-cycle', lock, { cycle })
  }

  private releaseAll(): void {
    const held = this.held
    if (held === undefined || held.length === 0) return
    for (let i = held.length - 1; i >= 0; i--) held[i]!.release()
    held.length = 0
    this.mmapCounts = undefined
  }
}

/**
 * One subsystem's view of the running transaction. Made once per host and
 * subsystem and pointed at each transaction that calls it.
 */
class SubsystemContext implements AttachContext<unknown> {
  tx!: Transaction
  privateState: unknown = undefined

  constructor(
    readonly subsystem: Subsystem<unknown>,
    private readonly id: number,
    /** The subsystem's callbacks as the host read them. */
    readonly callbacks: AttachCallbacks,
    /** The index the host's trace records this subsystem's events under. */
    readonly who: number,
  ) {}

  get transaction(): number {
    return this.tx.id
  }
  get mode(): AttachMode {
    return this.tx.mode
  }
  get phase(): AttachPhase {
    return this.tx.phase
  }
  get tasks(): ReadonlyArray<MigrationEntry> {
    return this.tx.tasks
  }
  get destinations(): ReadonlyArray<Cgroup> {
    return this.tx.destinations
  }
  get outcome(): 'committed' | 'aborted' | undefined {
    return this.tx.outcome
  }

  from(entry: MigrationEntry): Css<unknown> {
    return entry.from.css[this.id]!
  }

  to(entry: MigrationEntry): Css<unknown> {
    return entry.to.css[this.id]!
  }

  refuse(errno: Errno, reason: string): SystemError {
    return systemError(errno, this.tx.operation(), { subsystem: this.subsystem.name, reason })
  }

  lock(lock: SleepLock): void | Promise<void> {
    const tx = this.tx
    const name = this.subsystem.name
    if (tx.spin) tx.breakRule(name, 'sleep-in-spin', lock)
    const holder = tx.held?.find((entry) => entry.lock === lock)
    if (holder !== undefined) {
      tx.breakRule(name, 'shared-in-prepareSleep', lock, { holder: tx.host.subsystems[holder.by]!.name })
    }
    tx.checkOrder(name, lock)
    tx.hold(lock, this.id, () => lock.release(tx))
    return lock.acquire(tx)
  }

  lockSpin(lock: SpinLock): void {
    const tx = this.tx
    const name = this.subsystem.name
    if (lock.owner !== undefined) tx.breakRule(name, 'spin-contended', lock)
    tx.checkOrder(name, lock)
    lock.tryLock(tx)
    tx.hold(lock, this.id, () => lock.unlock(tx))
  }

  lockMmap(mm: Mm): void | Promise<void> {
    const tx = this.tx
    if (tx.spin) tx.breakRule(this.subsystem.name, 'sleep-in-spin', mm.mmapLock)
    tx.mmapCounts ??= new Map()
    const count = tx.mmapCounts.get(mm) ?? 0
    tx.mmapCounts.set(mm, count + 1)
    if (count > 0) return undefined
    tx.checkOrder(this.subsystem.name, mm.mmapLock)
    tx.hold(mm.mmapLock, this.id, () => mm.mmapLock.releaseRead())
    return mm.mmapLock.read(tx)
  }

  unlock(lock: SleepLock | SpinLock): void {
    const held = this.tx.held
    const at = held === undefined ? -1 : held.findIndex((entry) => entry.lock === lock && entry.by === this.id)
    if (at < 0) return
    held![at]!.release()
    held!.splice(at, 1)
  }
}

// The contexts of each host, by subsystem id (undefined for a subsystem with no attach callback).
const contextsByHost = new WeakMap<Host, ReadonlyArray<SubsystemContext | undefined>>()

const contextsOf = (host: Host): ReadonlyArray<SubsystemContext | undefined> => {
  let contexts = contextsByHost.get(host)
  if (contexts === undefined) {
    contexts = host.subsystems.map((subsystem, id) =>
      host.callbacks[id] === noCallbacks ? undefined : new SubsystemContext(subsystem, id, host.callbacks[id]!, host.trace.who(subsystem.name)),
    )
    contextsByHost.set(host, contexts)
  }
  return contexts
}

// --------------------------------------------------------------- requests

/**
 * @internal The transaction for an attach request as the user wrote it, or
 * the error that refuses it: a {@link BadArgument} for a malformed request,
 * ENOENT for a destination that does not exist.
 */
export const transactionFor = (host: Host, request: unknown, sleep: boolean): Transaction | CgtxError =>
  resolveKnown(host, request, sleep) ?? resolveDecoded(host, request, sleep)

/**
 * @internal A request naming existing cgroups, resolved without the codec:
 * an existing cgroup's hierarchy name and path are valid by construction, so
 * only the shape and the pid need checking, and the codec accepts the same
 * requests (a property test holds the two equal). Undefined sends the request
 * through the codec, which explains what is wrong.
 */
export const resolveKnown = (host: Host, request: unknown, sleep: boolean): Transaction | undefined => {
  if (typeof request !== 'object' || request === null) return undefined
  const { mode, to } = request as { mode?: unknown; to?: unknown }
  let destinations: ReadonlyArray<Cgroup>
  if (Array.isArray(to)) {
    if (to.length === 0) return undefined
    const several: Array<Cgroup> = []
    for (const ref of to as ReadonlyArray<unknown>) {
      const cgroup = host.findCgroup(ref)
      if (cgroup === undefined) return undefined
      for (const other of several) if (other.hierarchy === cgroup.hierarchy) return undefined
      several.push(cgroup)
    }
    destinations = several
  } else {
    const cgroup = host.findCgroup(to)
    if (cgroup === undefined) return undefined
    destinations = [cgroup]
  }
  if (mode === 'thread' || mode === 'process') {
    const pid = (request as { pid?: unknown }).pid
    return isPid(pid) ? new Transaction(host, sleep, mode, pid as number, destinations) : undefined
  }
  if (mode === 'all') {
    const from = (request as { from?: unknown }).from
    return typeof from === 'string' && destinations[0]!.hierarchy.lookup(from) !== undefined ? new Transaction(host, sleep, mode, from, destinations) : undefined
  }
  return undefined
}


// Decodes the request with the codec, then resolves its destinations: an
// unknown mount is a caller error, a missing path fails like open(2) of its
// cgroup.procs would.
const resolveDecoded = (host: Host, input: unknown, sleep: boolean): Transaction | CgtxError => {
  const decoded = decode(AttachRequest, input, 'request')
  if (E.isLeft(decoded)) return decoded.left
  const request = decoded.right
  const refs = Array.isArray(request.to) ? request.to : [request.to]
  const subject = request.mode === 'all' ? request.from : request.pid
  const destinations: Array<Cgroup> = []
  for (let i = 0; i < refs.length; i++) {
    const ref = refs[i]!
    const field = Array.isArray(request.to) ? `request.to.${i}.hierarchy` : 'request.to.hierarchy'
    const hierarchy = host.hierarchy(ref.hierarchy)
    if (hierarchy === undefined) return badArgument(field, ref.hierarchy, 'a mounted hierarchy')
    for (const cgroup of destinations) if (cgroup.hierarchy === hierarchy) return badArgument(field, ref.hierarchy, 'one destination per hierarchy')
    const cgroup = hierarchy.lookup(ref.path)
    if (cgroup === undefined) return systemError('ENOENT', describeAttach(request.mode, subject, refs))
    destinations.push(cgroup)
  }
  if (destinations.length === 0) return badArgument('request.to', request.to, 'at least one destination')
  return new Transaction(host, sleep, request.mode, subject, destinations)
}

/**
 * @internal The transaction for callers holding the objects: `subject` into
 * `destinations`, which the caller has checked belong to `host` and lie in
 * different hierarchies.
 */
export const transactionOf = (host: Host, subject: Subject, destinations: ReadonlyArray<Cgroup>, sleep: boolean): Transaction =>
  new Transaction(host, sleep, subject.mode, subject.mode === 'all' ? subject.from : subject.task, destinations)

/**
 * @internal The phases of a transaction over a built taskset, with the group
 * mutex and the thread-group locks held by `owner`; the caller has recorded
 * the `begin` event. Releases the thread-group locks before postAttach; the
 * caller releases the mutex.
 */
export const runPhases = (
  host: Host,
  txId: number,
  owner: object,
  operation: string,
  mode: AttachMode,
  entries: ReadonlyArray<MigrationEntry>,
  destinations: ReadonlyArray<Cgroup>,
  lockedGroups: Array<ThreadGroup>,
  options: MigrateOptions,
): Outcome => {
  const tx = new Transaction(host, options.sleep, mode, destinations[0]!, destinations)
  tx.id = txId
  tx.groupOwner = owner
  tx.locked = lockedGroups
  tx.described = operation
  if (options.guard !== undefined) tx.guard = options.guard
  return tx.runPhases(entries)
}

// ----------------------------------------------------------- callbacks

const settle = (promise: PromiseLike<unknown>): Promise<unknown> =>
  Promise.resolve(promise).then(
    (value) => value,
    (error: unknown) => new Thrown(error),
  )

const fault = (tx: Transaction, subsystem: Subsystem<unknown>, phase: AttachPhase, kind: Fault['kind'], detail: unknown): SystemError =>
  faultError(tx.operation(), { kind, subsystem: subsystem.name, phase, detail })

// Interprets what a fallible callback returned (or threw).
const failureOf = (tx: Transaction, subsystem: Subsystem<unknown>, phase: AttachPhase, outcome: unknown): SystemError | undefined => {
  if (tx.violation !== undefined) return fault(tx, subsystem, phase, 'lock-rule', tx.violation.message)
  if (outcome === undefined) return undefined
  if (outcome instanceof Thrown) {
    const error = outcome.error
    if (error instanceof LockRuleBroken) return fault(tx, subsystem, phase, 'lock-rule', error.message)
    if (isCgtxError(error) && error._tag === 'SystemError') return error
    return fault(tx, subsystem, phase, 'threw', error)
  }
  const value = outcome as CallbackResult
  if (typeof value === 'object' && value !== null && '_tag' in value) {
    if (value._tag === 'Left') return isCgtxError(value.left) ? (value.left as SystemError) : fault(tx, subsystem, phase, 'bad-return', value.left)
    if (value._tag === 'Right') return undefined
  }
  return fault(tx, subsystem, phase, 'bad-return', value)
}

// Callbacks that cannot fail: a throw, a rejection or a forbidden promise is
// recorded as a fault in the trace and the transaction goes on. `ok` is the
// trace code of the phase's success.
const recordInfallible = (tx: Transaction, ctx: SubsystemContext, phase: AttachPhase, ok: number, outcome: unknown, maySleep: boolean): void => {
  let detail: string | undefined
  if (outcome instanceof Thrown) detail = outcome.error instanceof LockRuleBroken ? outcome.error.message : `threw: ${String(outcome.error)}`
  else if (!maySleep && isPromiseLike(outcome)) detail = 'returned a promise where it may not sleep'
  if (detail === undefined) tx.trace.recordCode(tx.id, ctx.who, ok)
  else tx.trace.record(tx.id, ctx.subsystem.name, phase, 'fault', detail)
}

// Subsystems whose css changes for some task, in id order. For one task the
// answer depends only on the pair of css_sets, which never change, so it is
// remembered on the source css_set (forgotten with its cached moves).
const changedSubsystems = (host: Host, entries: ReadonlyArray<MigrationEntry>): ChangedSubsystems => {
  const only = entries.length === 1 ? entries[0]! : undefined
  if (only !== undefined) {
    const cached = only.from.changed.get(only.to)
    if (cached !== undefined && only.from.movesGeneration === host.cssGeneration) return cached
  }
  const ids: Array<number> = []
  for (let id = 0; id < host.subsystems.length; id++) {
    for (const entry of entries) {
      if (entry.from.css[id] === entry.to.css[id]) continue
      ids.push(id)
      break
    }
  }
  let phases = 0
  for (const id of ids) phases |= phasesOf(host.callbacks[id]!)
  const pool = contextsOf(host)
  const contexts: Array<SubsystemContext> = []
  for (const id of ids) if (pool[id] !== undefined) contexts.push(pool[id])
  const changed: ChangedSubsystems = { ids, names: Object.freeze(ids.map((id) => host.subsystems[id]!.name)), phases, contexts }
  if (only !== undefined && only.from.movesGeneration === host.cssGeneration) only.from.changed.set(only.to, changed)
  return changed
}

// ------------------------------------------------------------ describing

const refOf = (cgroup: Cgroup): Ref => ({ hierarchy: cgroup.hierarchy.name, path: cgroup.path })

const describeAttach = (mode: AttachMode, subject: number | Task | string | Cgroup, refs: ReadonlyArray<Ref>): string => {
  const to = refs.map((ref) => `${ref.hierarchy}:${ref.path}`).join(' + ')
  if (mode === 'all') return `attach all of ${typeof subject === 'string' ? subject : (subject as Cgroup).path} to ${to}`
  return `attach ${mode} ${typeof subject === 'number' ? subject : (subject as Task).tid} to ${to}`
}

// The begin event of a one-destination thread or process move: `n` is the
// tid (negative for a process), `ref` the destination cgroup.
const describeBegin = (n: number, ref: unknown): string => {
  const to = ref as Cgroup
  return `attach ${n < 0 ? 'process' : 'thread'} ${Math.abs(n)} to ${to.hierarchy.name}:${to.path}`
}

const describeTaskCount = (n: number): string => (n === 1 ? '1 task' : `${n} tasks`)

const describeMoved = (n: number): string => `moved ${n}`

const describeFailure = (error: SystemError): string => (error.fault !== undefined ? `${error.fault.kind}: ${error.message}` : error.errno)

const tidsOf = (entries: ReadonlyArray<MigrationEntry>): Array<number> => {
  if (entries.length === 1) return [entries[0]!.task.tid]
  const tids: Array<number> = []
  for (const entry of entries) tids.push(entry.task.tid)
  return tids
}

const ordered = <A>(order: 'reverse' | 'kernel', items: ReadonlyArray<A>): ReadonlyArray<A> => (order === 'reverse' ? [...items].reverse() : items)

// ------------------------------------------------------------- locking

/**
 * @internal Write-locks the thread group of `leader` and of every task in
 * `sources`, in tgid order, re-scanning until no new process appeared while
 * waiting (a fork in an unlocked process could add one). False if it would
 * have to wait and may not.
 */
export const lockThreadGroups = (
  leader: Task | undefined,
  sources: ReadonlyArray<Cgroup>,
  owner: object,
  locked: Array<ThreadGroup>,
  sleep: boolean,
): MaybePromise<boolean> => {
  const wanted = new Set<ThreadGroup>()
  if (leader !== undefined) wanted.add(leader.group)
  for (const source of sources) for (const task of source.tasks()) wanted.add(task.group)
  for (const group of locked) wanted.delete(group)
  if (wanted.size === 0) return true
  const pending = [...wanted].sort((a, b) => a.tgid - b.tgid)
  const next = (i: number): MaybePromise<boolean> => {
    for (; i < pending.length; i++) {
      const group = pending[i]!
      if (!group.lock.tryWrite(owner)) {
        if (!sleep) return false
        const resume = i + 1
        return Promise.resolve(group.lock.write(owner)).then(() => {
          locked.push(group)
          return next(resume)
        })
      }
      locked.push(group)
    }
    return lockThreadGroups(leader, sources, owner, locked, sleep)
  }
  return next(0)
}

// cgroup_migrate_vet_dst and the thread-domain check of __cgroup_procs_write.
const vetDestination = (
  host: Host,
  dst: Cgroup,
  mode: AttachMode,
  task: Task | undefined,
): { readonly errno: Errno; readonly reason: string } | undefined => {
  if (dst.hierarchy.version !== 'v2') return undefined
  if (!dst.domain.isValidDomain) return { errno: 'EOPNOTSUPP', reason: 'destination is domain invalid' }
  if (mode === 'thread' && task !== undefined) {
    const src = task.cssSet.cgroup(dst.hierarchy.index)
    if (src.domain !== dst.domain) return { errno: 'EOPNOTSUPP', reason: 'thread move across thread domains' }
  }
  if (dst.canBeThreadRoot(host.threadedSubsystems) || dst.threaded) return undefined
  if (dst.subtreeControl.size > 0) return { errno: 'EBUSY', reason: 'no internal processes' }
  return undefined
}

// --------------------------------------------------------- css_sets

// The css_set a task in `from` ends up in when its cgroups in the destinations' hierarchies change.
const destinationCssSet = (host: Host, from: CssSet, destinations: ReadonlyArray<Cgroup>): CssSet => {
  if (destinations.length === 1) {
    const dst = destinations[0]!
    if (from.movesGeneration !== host.cssGeneration) {
      from.moves.clear()
      from.changed.clear()
      from.movesGeneration = host.cssGeneration
    }
    const cached = from.moves.get(dst)
    if (cached !== undefined) return cached
    const found = internMoved(host, from, destinations)
    from.moves.set(dst, found)
    return found
  }
  return internMoved(host, from, destinations)
}

const internMoved = (host: Host, from: CssSet, destinations: ReadonlyArray<Cgroup>): CssSet => {
  const cgroups = [...from.cgroups]
  for (const dst of destinations) cgroups[dst.hierarchy.index] = dst
  let same = true
  for (let i = 0; i < cgroups.length; i++) if (cgroups[i] !== from.cgroups[i]) same = false
  if (same) return from
  return host.cssSets.intern(cgroups, host.cssOf(cgroups))
}
