/**
 * The attach transaction engine: prepareSleep → prepareSpin → commit point →
 * commit → attach → (locks drop) → postAttach, with abortSpin / abortSleep
 * on failure, exactly as the phase table in DESIGN.md specifies.
 *
 * Sync-first: every step runs synchronously and returns its result unless
 * something must wait (a contended lock, a callback that returns a promise);
 * only then does it return a promise that continues from that point. An
 * uncontended transaction through synchronous subsystems creates no promise.
 */
import * as E from 'fp-ts/lib/Either.js'
import type { Cgroup } from '../cgroup.ts'
import type { AttachMode, AttachRequest } from '../codecs.ts'
import type { Css, CssSet } from '../cssSet.ts'
import { badArgument, faultError, isCgtxError, systemError, type CgtxError, type Errno, type Fault, type SystemError } from '../errors.ts'
import type { Host } from '../host.ts'
import type { LockRule } from '../lockValidator.ts'
import type { Lock, SleepLock, SpinLock } from '../locks.ts'
import type { AttachContext, AttachPhase, CallbackResult, MigrationEntry, Subsystem } from '../subsystem.ts'
import type { Mm, Task, ThreadGroup } from '../task.ts'
import { noCallbacks, phaseBit, phasesOf, type AttachCallbacks, type ChangedSubsystems } from './callbacks.ts'
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

/** How the engine runs: may it wait, and where a synchronous caller reads an early result. */
export interface MigrateOptions {
  readonly sleep: boolean
  readonly guard?: { result?: E.Either<CgtxError, AttachReport> }
}

// A lock rule broken inside a callback; thrown through the plugin's code and
// caught around the callback.
class LockRuleBroken {
  constructor(readonly rule: LockRule, readonly message: string) {}
}

type Held = { readonly lock: Lock; readonly release: () => void; readonly by: number }

// Transaction-wide state shared by the per-subsystem contexts.
class Transaction {
  readonly held: Array<Held> = []
  // Created on first use: most transactions take no mmap lock.
  mmapCounts: Map<Mm, number> | undefined
  spin = false
  phase: AttachPhase = 'prepareSleep'
  violation: { readonly rule: LockRule; readonly subsystem: string; readonly message: string } | undefined
  outcome: 'committed' | 'aborted' | undefined

  constructor(
    readonly host: Host,
    readonly id: number,
    readonly mode: AttachMode,
    readonly operation: () => string,
    readonly tasks: ReadonlyArray<MigrationEntry>,
    readonly destinations: ReadonlyArray<Cgroup>,
  ) {}

  heldLocks(): Array<Lock> {
    return this.held.map((entry) => entry.lock)
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

  releaseAll(): void {
    if (this.held.length === 0) return
    for (let i = this.held.length - 1; i >= 0; i--) this.held[i]!.release()
    this.held.length = 0
    this.mmapCounts = undefined
  }
}

// One subsystem's view; one object per subsystem per transaction.
class SubsystemContext implements AttachContext<unknown> {
  privateState: unknown = undefined

  constructor(
    private readonly tx: Transaction,
    readonly subsystem: Subsystem<unknown>,
    private readonly id: number,
    /** The subsystem's callbacks as the host read them. */
    readonly callbacks: AttachCallbacks,
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
    const holder = tx.held.find((entry) => entry.lock === lock)
    if (holder !== undefined) {
      tx.breakRule(name, 'shared-in-prepareSleep', lock, { holder: tx.host.subsystems[holder.by]!.name })
    }
    tx.checkOrder(name, lock)
    const owner = tx
    tx.held.push({ lock, by: this.id, release: () => lock.release(owner) })
    return lock.acquire(owner)
  }

  lockSpin(lock: SpinLock): void {
    const tx = this.tx
    const name = this.subsystem.name
    if (lock.owner !== undefined) tx.breakRule(name, 'spin-contended', lock)
    tx.checkOrder(name, lock)
    lock.tryLock(tx)
    tx.held.push({ lock, by: this.id, release: () => lock.unlock(tx) })
  }

  lockMmap(mm: Mm): void | Promise<void> {
    const tx = this.tx
    if (tx.spin) tx.breakRule(this.subsystem.name, 'sleep-in-spin', mm.mmapLock)
    tx.mmapCounts ??= new Map()
    const count = tx.mmapCounts.get(mm) ?? 0
    tx.mmapCounts.set(mm, count + 1)
    if (count > 0) return undefined
    tx.checkOrder(this.subsystem.name, mm.mmapLock)
    tx.held.push({ lock: mm.mmapLock, by: this.id, release: () => mm.mmapLock.releaseRead() })
    return mm.mmapLock.read(tx)
  }

  unlock(lock: SleepLock | SpinLock): void {
    const at = this.tx.held.findIndex((entry) => entry.lock === lock && entry.by === this.id)
    if (at < 0) return
    this.tx.held[at]!.release()
    this.tx.held.splice(at, 1)
  }
}

const describeSubject = (subject: Subject, destinations: ReadonlyArray<{ readonly hierarchy: string; readonly path: string }>): string => {
  const to = destinations.map((ref) => `${ref.hierarchy}:${ref.path}`).join(' + ')
  if (subject.mode === 'all') return `attach all of ${typeof subject.from === 'string' ? subject.from : subject.from.path} to ${to}`
  return `attach ${subject.mode} ${typeof subject.task === 'number' ? subject.task : subject.task.tid} to ${to}`
}

// What a callback threw (or a promise rejected with), told apart from any
// value a callback may return by its class.
class Thrown {
  constructor(readonly error: unknown) {}
}

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

const describeLater = (subject: Subject, destinations: ReadonlyArray<{ readonly hierarchy: string; readonly path: string }>): (() => string) => {
  let built: string | undefined
  return () => (built ??= describeSubject(subject, destinations))
}

// The begin event of a one-destination thread or process move: `n` is the
// tid (negative for a process), `ref` the destination cgroup.
const describeBegin = (n: number, ref: unknown): string => {
  const to = ref as Cgroup
  return `attach ${n < 0 ? 'process' : 'thread'} ${Math.abs(n)} to ${to.hierarchy.name}:${to.path}`
}

/**
 * Who moves: a thread or a process named by pid or held as a Task, or every
 * task of a cgroup named by path (in the first destination's hierarchy) or held.
 */
export type Subject =
  | { readonly mode: 'thread' | 'process'; readonly task: number | Task }
  | { readonly mode: 'all'; readonly from: string | Cgroup }

const cgroupRefOf = (cgroup: Cgroup): { readonly hierarchy: string; readonly path: string } => ({ hierarchy: cgroup.hierarchy.name, path: cgroup.path })

// Calls a subsystem callback; a throw comes back as a Thrown. Allocates
// nothing when the callback returns normally.
const invoke = (callback: (ctx: AttachContext<unknown>) => unknown, ctx: SubsystemContext): unknown => {
  try {
    return callback.call(ctx.subsystem, ctx)
  } catch (error) {
    return new Thrown(error)
  }
}

/** The transaction for a decoded request naming cgroups by path; see the module comment. */
export const migrate = (host: Host, request: AttachRequest, options: MigrateOptions): MaybePromise<E.Either<CgtxError, AttachReport>> => {
  const subject: Subject = request.mode === 'all' ? { mode: 'all', from: request.from } : { mode: request.mode, task: request.pid }
  const refs = Array.isArray(request.to) ? request.to : [request.to]
  // Built only when an error or the trace is read: the happy path formats nothing.
  const operation = describeLater(subject, refs)

  // Destinations, before any lock: unknown mount is a caller error, a missing
  // path fails like open(2) of its cgroup.procs would.
  const destinations: Array<Cgroup> = []
  for (let i = 0; i < refs.length; i++) {
    const ref = refs[i]!
    const hierarchy = host.hierarchy(ref.hierarchy)
    if (hierarchy === undefined) return E.left(badArgument(destinationField(request.to, i), ref.hierarchy, 'a mounted hierarchy'))
    for (const cgroup of destinations)
      if (cgroup.hierarchy === hierarchy) return E.left(badArgument(destinationField(request.to, i), ref.hierarchy, 'one destination per hierarchy'))
    const cgroup = hierarchy.lookup(ref.path)
    if (cgroup === undefined) return E.left(systemError('ENOENT', operation()))
    destinations.push(cgroup)
  }
  if (destinations.length === 0) return E.left(badArgument('request.to', request.to, 'at least one destination'))
  return begin(host, subject, destinations, operation, options)
}

/**
 * The transaction for callers holding the objects: `task` (or its whole
 * process) into `destinations`, which the caller has checked belong to `host`
 * and lie in different hierarchies.
 */
export const migrateResolved = (
  host: Host,
  subject: Subject,
  destinations: ReadonlyArray<Cgroup>,
  options: MigrateOptions,
): MaybePromise<E.Either<CgtxError, AttachReport>> => begin(host, subject, destinations, describeLater(subject, destinations.map(cgroupRefOf)), options)

const begin = (
  host: Host,
  subject: Subject,
  destinations: ReadonlyArray<Cgroup>,
  operation: () => string,
  options: MigrateOptions,
): MaybePromise<E.Either<CgtxError, AttachReport>> => {
  const attempt: Attempt = { host, subject, options, operation, destinations, locked: [] }
  if (host.mutex.tryAcquire(attempt)) return underMutex(attempt)
  if (!options.sleep) return E.left(systemError('EAGAIN', operation(), { reason: 'would block on cgroup_mutex' }))
  return Promise.resolve(host.mutex.acquire(attempt)).then(() => underMutex(attempt))
}

// Everything one attach carries from step to step (one object, no closures);
// it is also the owner of the locks the attach takes.
interface Attempt {
  readonly host: Host
  readonly subject: Subject
  readonly options: MigrateOptions
  readonly operation: () => string
  readonly destinations: ReadonlyArray<Cgroup>
  readonly locked: Array<ThreadGroup>
  txId?: number
  leader?: Task | undefined
  source?: Cgroup | undefined
}

// Holding the group mutex; releases it (and any thread-group lock) once the
// transaction is over, now or later.
const underMutex = (attempt: Attempt): MaybePromise<E.Either<CgtxError, AttachReport>> => {
  let result: MaybePromise<E.Either<CgtxError, AttachReport>>
  try {
    result = findAndLock(attempt)
  } catch (error) {
    releaseAttempt(attempt)
    throw error
  }
  if (!isPromiseLike(result)) {
    releaseAttempt(attempt)
    return result
  }
  return Promise.resolve(result).finally(() => releaseAttempt(attempt))
}

const releaseAttempt = (attempt: Attempt): void => {
  for (const group of attempt.locked) if (group.lock.writeOwner === attempt) group.lock.releaseWrite(attempt)
  attempt.host.mutex.release(attempt)
}

// Find the task(s) under the mutex, as cgroup_procs_write_start does, and
// keep fork / exec / exit out of every process involved.
const findAndLock = (attempt: Attempt): MaybePromise<E.Either<CgtxError, AttachReport>> => {
  const { host, subject, operation } = attempt
  attempt.txId = host.newTransaction()
  for (const cgroup of attempt.destinations) if (cgroup.dead) return E.left(systemError('ENODEV', operation()))
  if (subject.mode === 'all') {
    const from = subject.from
    attempt.source = typeof from === 'string' ? attempt.destinations[0]!.hierarchy.lookup(from) : from.dead ? undefined : from
    if (attempt.source === undefined) return E.left(systemError('ENOENT', operation()))
  } else {
    let leader = typeof subject.task === 'number' ? host.task(subject.task) : subject.task
    if (leader === undefined || leader.state === 'reaped') return E.left(systemError('ESRCH', operation()))
    if (subject.mode === 'process') leader = leader.group.leader
    if (leader.flags.noSetAffinity) return E.left(systemError('EINVAL', operation(), { reason: 'PF_NO_SETAFFINITY' }))
    attempt.leader = leader
  }
  const done = lockThreadGroups(attempt.leader, attempt.source === undefined ? [] : [attempt.source], attempt, attempt.locked, attempt.options.sleep)
  return isPromiseLike(done) ? Promise.resolve(done).then((locked) => buildAndRun(attempt, locked)) : buildAndRun(attempt, done)
}

// Vet the destinations, build the taskset (live tasks whose css_set changes), run the phases.
const buildAndRun = (attempt: Attempt, locked: boolean): MaybePromise<E.Either<CgtxError, AttachReport>> => {
  const { host, subject, operation, destinations, leader } = attempt
  if (!locked) return E.left(systemError('EAGAIN', operation(), { reason: 'would block on the thread-group lock' }))
  for (const dst of destinations) {
    const refused = vetDestination(host, dst, subject.mode, leader)
    if (refused !== undefined) return E.left(systemError(refused.errno, operation(), { reason: refused.reason }))
  }
  const entries: Array<MigrationEntry> = []
  const skipped: Array<number> = []
  if (subject.mode === 'thread') addEntry(host, leader!, destinations, entries, skipped)
  else for (const task of subject.mode === 'process' ? [...leader!.group.threads] : [...attempt.source!.tasks()]) addEntry(host, task, destinations, entries, skipped)
  if (entries.length === 0) return E.right({ transaction: attempt.txId!, moved: [], skipped, subsystems: [] })
  host.trace.tick()
  if (subject.mode === 'all' || destinations.length > 1) host.trace.record(attempt.txId!, undefined, 'begin', 'ok', operation)
  else host.trace.recordFormatted(attempt.txId!, undefined, 'begin', 'ok', describeBegin, subject.mode === 'thread' ? leader!.tid : -leader!.tid, destinations[0])
  return runPhases(host, attempt.txId!, attempt, operation, subject.mode, entries, destinations, attempt.locked, attempt.options, skipped)
}

const addEntry = (host: Host, task: Task, destinations: ReadonlyArray<Cgroup>, entries: Array<MigrationEntry>, skipped: Array<number>): void => {
  if (task.state !== 'running') {
    if (task.state === 'exiting') skipped.push(task.tid)
    return
  }
  const to = destinationCssSet(host, task.cssSet, destinations)
  if (to !== task.cssSet) entries.push({ task, from: task.cssSet, to })
}

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
  operation: () => string,
  mode: AttachMode,
  entries: ReadonlyArray<MigrationEntry>,
  destinations: ReadonlyArray<Cgroup>,
  lockedGroups: Array<ThreadGroup>,
  options: MigrateOptions,
  skipped: ReadonlyArray<number> = [],
): MaybePromise<E.Either<SystemError, AttachReport>> => {
  const tx = new Transaction(host, txId, mode, operation, entries, destinations)
  // A subsystem whose css changes but that has no attach callback is reported, not called.
  const changed = changedSubsystems(host, entries)
  const contexts: Array<SubsystemContext> = []
  for (const id of changed.ids) if (host.callbacks[id] !== noCallbacks) contexts.push(new SubsystemContext(tx, host.subsystems[id]!, id, host.callbacks[id]!))
  return new Phases(tx, contexts, changed, owner, lockedGroups, options, skipped).prepareSleep(0)
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
  const changed: ChangedSubsystems = { ids, names: Object.freeze(ids.map((id) => host.subsystems[id]!.name)), phases }
  if (only !== undefined && only.from.movesGeneration === host.cssGeneration) only.from.changed.set(only.to, changed)
  return changed
}

type Outcome = MaybePromise<E.Either<SystemError, AttachReport>>

const noContexts: ReadonlyArray<SubsystemContext> = []

const settle = (promise: PromiseLike<unknown>): Promise<unknown> =>
  Promise.resolve(promise).then(
    (value) => value,
    (error: unknown) => new Thrown(error),
  )

/**
 * The phase sequence as methods that run synchronously until a callback
 * returns a promise, and continue from that callback once it settles. Plain
 * functions rather than a generator: V8 optimises these, and the synchronous
 * path allocates no promise.
 */
class Phases {
  // Subsystems prepared so far: always a prefix of `contexts` (a failing one is not counted).
  private preparedSleep = 0
  private preparedSpin = 0
  private failure: SystemError | undefined
  private report: AttachReport | undefined

  constructor(
    private readonly tx: Transaction,
    private readonly contexts: ReadonlyArray<SubsystemContext>,
    /** Every subsystem whose css changes, called or not, and the phases they have callbacks for. */
    private readonly changed: ChangedSubsystems,
    private readonly owner: object,
    private readonly lockedGroups: Array<ThreadGroup>,
    private readonly options: MigrateOptions,
    private readonly skipped: ReadonlyArray<number>,
  ) {}

  prepareSleep(from: number): Outcome {
    const { tx, contexts, options } = this
    tx.phase = 'prepareSleep'
    // A phase nobody has a callback for is skipped: everyone is prepared.
    if ((this.changed.phases & phaseBit.prepareSleep) === 0) {
      this.preparedSleep = contexts.length
      return this.prepareSpin()
    }
    for (let i = from; i < contexts.length; i++) {
      const ctx = contexts[i]!
      const prepare = ctx.callbacks.prepareSleep
      if (prepare === undefined) {
        this.preparedSleep++
        continue
      }
      const outcome = invoke(prepare, ctx)
      if (isPromiseLike(outcome)) {
        // In a synchronous attach a sleeping prepare is a fault; the caller
        // gets it now, and the stray is waited for (and undone) before the
        // group mutex is released.
        let slept: SystemError | undefined
        if (!options.sleep) {
          slept = faultError(tx.operation(), { kind: 'slept', subsystem: ctx.subsystem.name, phase: 'prepareSleep', detail: 'returned a promise in a synchronous attach' })
          options.guard!.result ??= E.left(slept)
        }
        return settle(outcome).then((settled) => {
          tx.host.trace.tick()
          return this.preparedSleepOne(ctx, settled, slept) ? this.prepareSleep(i + 1) : this.abort()
        })
      }
      if (!this.preparedSleepOne(ctx, outcome, undefined)) return this.abort()
    }
    return this.prepareSpin()
  }

  // Records one prepareSleep outcome; false if the transaction fails here.
  private preparedSleepOne(ctx: SubsystemContext, outcome: unknown, slept: SystemError | undefined): boolean {
    const refused = failureOf(this.tx, ctx.subsystem, 'prepareSleep', outcome)
    if (refused === undefined) this.preparedSleep++
    const failure = refused ?? slept
    if (failure === undefined) {
      this.tx.host.trace.record(this.tx.id, ctx.subsystem.name, 'prepareSleep', 'ok')
      return true
    }
    this.failure = failure
    this.tx.host.trace.record(this.tx.id, ctx.subsystem.name, 'prepareSleep', failure.fault !== undefined ? 'fault' : 'failed', describeFailure(failure))
    return false
  }

  // Synchronous only: a promise or a sleeping lock is a fault.
  private prepareSpin(): Outcome {
    const { tx, contexts, options } = this
    tx.phase = 'prepareSpin'
    tx.spin = true
    if ((this.changed.phases & phaseBit.prepareSpin) === 0) {
      this.preparedSpin = contexts.length
      return this.commit()
    }
    for (const ctx of contexts) {
      const prepare = ctx.callbacks.prepareSpin
      if (prepare === undefined) {
        this.preparedSpin++
        continue
      }
      const outcome = invoke(prepare, ctx)
      if (isPromiseLike(outcome)) {
        const failure = faultError(tx.operation(), { kind: 'slept', subsystem: ctx.subsystem.name, phase: 'prepareSpin', detail: 'returned a promise' })
        this.failure = failure
        if (!options.sleep) options.guard!.result ??= E.left(failure)
        tx.host.trace.record(tx.id, ctx.subsystem.name, 'prepareSpin', 'fault', describeFailure(failure))
        // Wait for the stray to settle; if it succeeded it must be undone too.
        return settle(outcome).then((settled) => {
          tx.host.trace.tick()
          if (failureOf(tx, ctx.subsystem, 'prepareSpin', settled) === undefined && tx.violation === undefined) this.preparedSpin++
          return this.abort()
        })
      }
      const refused = failureOf(tx, ctx.subsystem, 'prepareSpin', outcome)
      if (refused !== undefined) {
        this.failure = refused
        tx.host.trace.record(tx.id, ctx.subsystem.name, 'prepareSpin', refused.fault !== undefined ? 'fault' : 'failed', describeFailure(refused))
        return this.abort()
      }
      this.preparedSpin++
      tx.host.trace.record(tx.id, ctx.subsystem.name, 'prepareSpin', 'ok')
    }
    return this.commit()
  }

  // abortSpin on those whose prepareSpin succeeded, then abortSleep.
  private abort(): Outcome {
    const tx = this.tx
    tx.outcome = 'aborted'
    tx.phase = 'abortSpin'
    for (const ctx of ordered(tx.host.abortOrder, this.contexts.slice(0, this.preparedSpin))) {
      const abort = ctx.callbacks.abortSpin
      if (abort !== undefined) recordInfallible(tx, ctx, 'abortSpin', invoke(abort, ctx), false)
    }
    tx.spin = false
    return this.sleepingPhase('abortSleep', ordered(tx.host.abortOrder, this.contexts.slice(0, this.preparedSleep)), 0)
  }

  // The commit point, then commit: cannot fail; a throw is recorded and the rest still commit.
  private commit(): Outcome {
    const { tx, contexts, options } = this
    for (const entry of tx.tasks) tx.host.moveTask(entry.task, entry.to)
    tx.outcome = 'committed'
    tx.host.trace.record(tx.id, undefined, 'commit-point', 'ok', tx.tasks.length === 1 ? '1 task' : `${tx.tasks.length} tasks`)
    this.report = { transaction: tx.id, moved: tidsOf(tx.tasks), skipped: this.skipped, subsystems: this.changed.names }
    if (!options.sleep) options.guard!.result = E.right(this.report)
    tx.phase = 'commit'
    for (const ctx of (this.changed.phases & phaseBit.commit) === 0 ? noContexts : contexts) {
      const commit = ctx.callbacks.commit
      if (commit !== undefined) recordInfallible(tx, ctx, 'commit', invoke(commit, ctx), false)
    }
    tx.spin = false
    tx.releaseAll()
    // Post-commit: may sleep, cannot fail.
    return this.sleepingPhase('attach', contexts, 0)
  }

  // After the thread-group locks drop, for every called subsystem, success or failure.
  private postAttach(): Outcome {
    // The caller's release skips groups no longer held by the owner.
    for (const group of this.lockedGroups) group.lock.releaseWrite(this.owner)
    return this.sleepingPhase('postAttach', this.contexts, 0)
  }

  private end(): Outcome {
    const { tx, failure } = this
    if (failure !== undefined) {
      tx.host.trace.record(tx.id, undefined, 'end', failure.fault !== undefined ? 'fault' : 'failed', describeFailure(failure))
      return E.left(failure)
    }
    tx.host.trace.record(tx.id, undefined, 'end', 'ok', tx.tasks.length === 1 ? 'moved 1' : `moved ${tx.tasks.length}`)
    return E.right(this.report!)
  }

  /**
   * A phase whose callbacks may sleep and cannot fail (abortSleep, attach,
   * postAttach): each in `order` from `from`, waiting where one returns a
   * promise; then the locks taken are released and the next phase runs.
   */
  private sleepingPhase(phase: 'abortSleep' | 'attach' | 'postAttach', order: ReadonlyArray<SubsystemContext>, from: number): Outcome {
    const tx = this.tx
    tx.phase = phase
    // A phase nobody has a callback for is skipped.
    const list = (this.changed.phases & phaseBit[phase]) === 0 ? noContexts : order
    for (let i = from; i < list.length; i++) {
      const ctx = list[i]!
      // Named loads (not callbacks[phase]): V8 keeps them monomorphic.
      const callback = phase === 'attach' ? ctx.callbacks.attach : phase === 'postAttach' ? ctx.callbacks.postAttach : ctx.callbacks.abortSleep
      if (callback === undefined) continue
      const outcome = invoke(callback, ctx)
      if (isPromiseLike(outcome))
        return settle(outcome).then((settled) => {
          tx.host.trace.tick()
          recordInfallible(tx, ctx, phase, settled, true)
          return this.sleepingPhase(phase, order, i + 1)
        })
      recordInfallible(tx, ctx, phase, outcome, true)
    }
    tx.releaseAll()
    // abortSleep and attach are followed by postAttach, postAttach by the end.
    return phase === 'postAttach' ? this.end() : this.postAttach()
  }
}

// Callbacks that cannot fail: a throw, a rejection or a forbidden promise is
// recorded as a fault in the trace and the transaction goes on.
const recordInfallible = (
  tx: Transaction,
  ctx: SubsystemContext,
  phase: AttachPhase,
  outcome: unknown,
  maySleep: boolean,
): void => {
  let detail: string | undefined
  if (outcome instanceof Thrown) detail = outcome.error instanceof LockRuleBroken ? outcome.error.message : `threw: ${String(outcome.error)}`
  else if (!maySleep && isPromiseLike(outcome)) detail = 'returned a promise where it may not sleep'
  tx.host.trace.record(tx.id, ctx.subsystem.name, phase, detail === undefined ? 'ok' : 'fault', detail)
}

const tidsOf = (entries: ReadonlyArray<MigrationEntry>): Array<number> => {
  const tids: Array<number> = []
  for (const entry of entries) tids.push(entry.task.tid)
  return tids
}


const ordered = <A>(order: 'reverse' | 'kernel', items: ReadonlyArray<A>): ReadonlyArray<A> =>
  order === 'reverse' ? [...items].reverse() : items

const describeFailure = (error: SystemError): string =>
  error.fault !== undefined ? `${error.fault.kind}: ${error.message}` : error.errno

const destinationField = (to: AttachRequest['to'], i: number): string => (Array.isArray(to) ? `request.to.${i}.hierarchy` : 'request.to.hierarchy')

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
  // One process and nobody queued: the common case, no set, no sort.
  if (sources.length === 0 && leader !== undefined && locked.length === 0 && leader.group.lock.tryWrite(owner)) {
    locked.push(leader.group)
    return true
  }
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
