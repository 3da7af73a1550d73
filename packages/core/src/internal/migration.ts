/**
 * The attach transaction engine: prepareSleep → prepareSpin → commit point →
 * commit → attach → (locks drop) → postAttach, with abortSpin / abortSleep
 * on failure, exactly as the phase table in DESIGN.md specifies.
 *
 * Written as a generator that yields only where something must wait, and
 * driven by `drive`, so an uncontended transaction through synchronous
 * subsystems runs without creating a single promise.
 */
import * as E from 'fp-ts/lib/Either.js'
import type { Cgroup } from '../cgroup.ts'
import type { AttachMode, AttachRequest, CgroupRef } from '../codecs.ts'
import type { Css, CssSet } from '../cssSet.ts'
import { faultError, isCgtxError, systemError, type CgtxError, type Errno, type Fault, type SystemError } from '../errors.ts'
import type { Host } from '../host.ts'
import type { LockRule } from '../lockValidator.ts'
import type { Lock, SleepLock, SpinLock } from '../locks.ts'
import type { AttachContext, AttachPhase, CallbackResult, MigrationEntry, Subsystem } from '../subsystem.ts'
import type { Mm, Task, ThreadGroup } from '../task.ts'
import { isPromiseLike, type Settled } from './settle.ts'

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

const describeRequest = (request: AttachRequest): string => {
  const destinations = (Array.isArray(request.to) ? request.to : [request.to])
    .map((ref: CgroupRef) => `${ref.hierarchy}:${ref.path}`)
    .join(' + ')
  return request.mode === 'all'
    ? `attach all of ${request.from} to ${destinations}`
    : `attach ${request.mode} ${request.pid} to ${destinations}`
}

// Interprets what a fallible callback returned (or threw).
const failureOf = (
  tx: Transaction,
  subsystem: Subsystem<unknown>,
  phase: AttachPhase,
  outcome: Settled,
): SystemError | undefined => {
  const fault = (kind: Fault['kind'], detail: unknown): SystemError =>
    faultError(tx.operation(), { kind, subsystem: subsystem.name, phase, detail })
  if (tx.violation !== undefined) return fault('lock-rule', tx.violation.message)
  if (!outcome.ok) {
    if (outcome.error instanceof LockRuleBroken) return fault('lock-rule', outcome.error.message)
    if (isCgtxError(outcome.error) && outcome.error._tag === 'SystemError') return outcome.error
    return fault('threw', outcome.error)
  }
  const value = outcome.value as CallbackResult
  if (value === undefined) return undefined
  if (typeof value === 'object' && value !== null && '_tag' in value) {
    if (value._tag === 'Left') return isCgtxError(value.left) ? value.left as SystemError : fault('bad-return', value.left)
    if (value._tag === 'Right') return undefined
  }
  return fault('bad-return', value)
}

const describeLater = (request: AttachRequest): (() => string) => {
  let built: string | undefined
  return () => (built ??= describeRequest(request))
}

// Calls a subsystem callback, catching a throw. No closure: the attach path
// creates as few objects as it can.
const invoke = (callback: (ctx: AttachContext<unknown>) => unknown, ctx: SubsystemContext): Settled => {
  try {
    return { ok: true, value: callback.call(ctx.subsystem, ctx) }
  } catch (error) {
    return { ok: false, error }
  }
}

/** The transaction; see the module comment. */
export function* migrate(
  host: Host,
  request: AttachRequest,
  options: MigrateOptions,
): Generator<PromiseLike<unknown>, E.Either<CgtxError, AttachReport>, Settled> {
  // Built only when an error or the trace is read: the happy path formats nothing.
  const operation = describeLater(request)
  const refs = Array.isArray(request.to) ? request.to : [request.to]

  // Destinations, before any lock: unknown mount is a caller error, a missing
  // path fails like open(2) of its cgroup.procs would.
  const destinations: Array<Cgroup> = []
  for (let i = 0; i < refs.length; i++) {
    const ref = refs[i]!
    const hierarchy = host.hierarchy(ref.hierarchy)
    if (hierarchy === undefined) return E.left(badDestination(request.to, i, ref.hierarchy))
    for (const cgroup of destinations)
      if (cgroup.hierarchy === hierarchy) return E.left(badDestination(request.to, i, ref.hierarchy, 'one destination per hierarchy'))
    const cgroup = hierarchy.lookup(ref.path)
    if (cgroup === undefined) return E.left(systemError('ENOENT', operation()))
    destinations.push(cgroup)
  }
  const first = destinations[0]
  if (first === undefined) return E.left(badDestination(request.to, 0, refs, 'at least one destination'))

  const owner = {}
  if (!host.mutex.tryAcquire(owner)) {
    if (!options.sleep) return E.left(systemError('EAGAIN', operation(), { reason: 'would block on cgroup_mutex' }))
    yield host.mutex.acquire(owner) as Promise<void>
  }
  const txId = host.newTransaction()
  const lockedGroups: Array<ThreadGroup> = []
  try {
    for (const cgroup of destinations) if (cgroup.dead) return E.left(systemError('ENODEV', operation()))

    // Find the task(s) under the mutex, as cgroup_procs_write_start does.
    let leader: Task | undefined
    let source: Cgroup | undefined
    if (request.mode === 'all') {
      source = first.hierarchy.lookup(request.from)
      if (source === undefined) return E.left(systemError('ENOENT', operation()))
    } else {
      leader = host.task(request.pid)
      if (leader === undefined || leader.state === 'reaped') return E.left(systemError('ESRCH', operation()))
      if (request.mode === 'process') leader = leader.group.leader
      if (leader.flags.noSetAffinity) return E.left(systemError('EINVAL', operation(), { reason: 'PF_NO_SETAFFINITY' }))
    }

    // Keep fork / exec / exit out of every process involved.
    const locked = yield* lockThreadGroups(leader, source === undefined ? [] : [source], owner, lockedGroups, options.sleep)
    if (!locked) return E.left(systemError('EAGAIN', operation(), { reason: 'would block on the thread-group lock' }))

    // Per-hierarchy checks on the destinations (v2 rules).
    for (const dst of destinations) {
      const refused = vetDestination(host, dst, request.mode, leader)
      if (refused !== undefined) return E.left(systemError(refused.errno, operation(), { reason: refused.reason }))
    }

    // Build the taskset: live tasks whose css_set changes.
    const candidates: Array<Task> =
      request.mode === 'all' ? [...source!.tasks()] : request.mode === 'process' ? [...leader!.group.threads] : [leader!]
    const entries: Array<MigrationEntry> = []
    const skipped: Array<number> = []
    for (const task of candidates) {
      if (task.state !== 'running') {
        if (task.state === 'exiting') skipped.push(task.tid)
        continue
      }
      const to = destinationCssSet(host, task.cssSet, destinations)
      if (to !== task.cssSet) entries.push({ task, from: task.cssSet, to })
    }
    if (entries.length === 0) {
      return E.right({ transaction: txId, moved: [], skipped, subsystems: [] })
    }

    return yield* runPhases(host, txId, owner, operation, request.mode, entries, destinations, lockedGroups, options, skipped)
  } finally {
    for (const group of lockedGroups) if (group.lock.writeOwner === owner) group.lock.releaseWrite(owner)
    host.mutex.release(owner)
  }
}

/**
 * @internal The phases of a transaction over a built taskset, with the group
 * mutex and the thread-group locks held by `owner`. Releases the thread-group
 * locks before postAttach; the caller releases the mutex.
 */
export function* runPhases(
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
): Generator<PromiseLike<unknown>, E.Either<SystemError, AttachReport>, Settled> {
  const trace = host.trace
  // Subsystems whose css changes for some task, in id order.
  const called: Array<number> = []
  for (let id = 0; id < host.subsystems.length; id++) {
    for (const entry of entries) {
      if (entry.from.css[id] === entry.to.css[id]) continue
      called.push(id)
      break
    }
  }
  const tx = new Transaction(host, txId, mode, operation, entries, destinations)
  const contexts: Array<SubsystemContext> = []
  for (const id of called) contexts.push(new SubsystemContext(tx, host.subsystems[id]!, id))
  trace.tick()
  trace.record(txId, undefined, 'begin', 'ok', operation)

  // --- prepareSleep
  let failure: SystemError | undefined
  const preparedSleep: Array<SubsystemContext> = []
  tx.phase = 'prepareSleep'
  for (const ctx of contexts) {
    const prepare = ctx.subsystem.prepareSleep
    if (prepare === undefined) {
      preparedSleep.push(ctx)
      continue
    }
    let outcome = invoke(prepare, ctx)
    let slept = false
    if (outcome.ok && isPromiseLike(outcome.value)) {
      if (!options.sleep) {
        slept = true
        options.guard!.result ??= E.left(
          faultError(operation(), { kind: 'slept', subsystem: ctx.subsystem.name, phase: 'prepareSleep', detail: 'returned a promise in a synchronous attach' }),
        )
      }
      outcome = yield outcome.value
      trace.tick()
    }
    const refused = failureOf(tx, ctx.subsystem, 'prepareSleep', outcome)
    if (refused === undefined) preparedSleep.push(ctx)
    if (refused !== undefined || slept) {
      failure = refused ?? (options.guard!.result as E.Left<CgtxError>).left as SystemError
      trace.record(txId, ctx.subsystem.name, 'prepareSleep', refused?.fault !== undefined || slept ? 'fault' : 'failed', describeFailure(failure))
      break
    }
    trace.record(txId, ctx.subsystem.name, 'prepareSleep', 'ok')
  }

  // --- prepareSpin: synchronous only; a promise or a sleeping lock is a fault.
  const preparedSpin: Array<SubsystemContext> = []
  if (failure === undefined) {
    tx.phase = 'prepareSpin'
    tx.spin = true
    for (const ctx of contexts) {
      const prepare = ctx.subsystem.prepareSpin
      if (prepare === undefined) {
        preparedSpin.push(ctx)
        continue
      }
      const outcome = invoke(prepare, ctx)
      if (outcome.ok && isPromiseLike(outcome.value)) {
        failure = faultError(operation(), { kind: 'slept', subsystem: ctx.subsystem.name, phase: 'prepareSpin', detail: 'returned a promise' })
        if (!options.sleep) options.guard!.result ??= E.left(failure)
        trace.record(txId, ctx.subsystem.name, 'prepareSpin', 'fault', describeFailure(failure))
        // Wait for the stray to settle; if it succeeded it must be undone too.
        const settled = yield outcome.value
        trace.tick()
        if (failureOf(tx, ctx.subsystem, 'prepareSpin', settled) === undefined && tx.violation === undefined) preparedSpin.push(ctx)
        break
      }
      const refused = failureOf(tx, ctx.subsystem, 'prepareSpin', outcome)
      if (refused !== undefined) {
        failure = refused
        trace.record(txId, ctx.subsystem.name, 'prepareSpin', refused.fault !== undefined ? 'fault' : 'failed', describeFailure(refused))
        break
      }
      preparedSpin.push(ctx)
      trace.record(txId, ctx.subsystem.name, 'prepareSpin', 'ok')
    }
  }

  if (failure !== undefined) {
    // --- abort: abortSpin on those whose prepareSpin succeeded, then abortSleep.
    tx.outcome = 'aborted'
    tx.phase = 'abortSpin'
    for (const ctx of ordered(host.abortOrder, preparedSpin)) {
      const abort = ctx.subsystem.abortSpin
      if (abort === undefined) continue
      const outcome = invoke(abort, ctx)
      recordInfallible(tx, ctx, 'abortSpin', outcome, false)
    }
    tx.spin = false
    tx.phase = 'abortSleep'
    for (const ctx of ordered(host.abortOrder, preparedSleep)) {
      const abort = ctx.subsystem.abortSleep
      if (abort === undefined) continue
      let outcome = invoke(abort, ctx)
      if (outcome.ok && isPromiseLike(outcome.value)) {
          outcome = yield outcome.value
          tx.host.trace.tick()
        }
      recordInfallible(tx, ctx, 'abortSleep', outcome, true)
    }
    tx.releaseAll()
    yield* postAttach(tx, contexts, lockedGroups, owner)
    trace.record(txId, undefined, 'end', failure.fault !== undefined ? 'fault' : 'failed', describeFailure(failure))
    return E.left(failure)
  }

  // --- commit point: every task's css_set pointer switches at once.
  for (const entry of entries) host.moveTask(entry.task, entry.to)
  tx.outcome = 'committed'
  trace.record(txId, undefined, 'commit-point', 'ok', `${entries.length} task(s)`)
  const report: AttachReport = {
    transaction: txId,
    moved: tidsOf(entries),
    skipped,
    subsystems: namesOf(contexts),
  }
  if (!options.sleep) options.guard!.result = E.right(report)

  // --- commit: cannot fail; a throw is recorded and the rest still commit.
  tx.phase = 'commit'
  for (const ctx of contexts) {
    const commit = ctx.subsystem.commit
    if (commit === undefined) continue
    recordInfallible(tx, ctx, 'commit', invoke(commit, ctx), false)
  }
  tx.spin = false
  tx.releaseAll()

  // --- attach (post-commit; may sleep, cannot fail)
  tx.phase = 'attach'
  for (const ctx of contexts) {
    const attach = ctx.subsystem.attach
    if (attach === undefined) continue
    let outcome = invoke(attach, ctx)
    if (outcome.ok && isPromiseLike(outcome.value)) {
          outcome = yield outcome.value
          tx.host.trace.tick()
        }
    recordInfallible(tx, ctx, 'attach', outcome, true)
  }
  tx.releaseAll()
  yield* postAttach(tx, contexts, lockedGroups, owner)
  trace.record(txId, undefined, 'end', 'ok', `moved ${report.moved.length}`)
  return E.right(report)
}

// postAttach runs after the thread-group locks drop, for every called
// subsystem, success or failure.
function* postAttach(
  tx: Transaction,
  contexts: ReadonlyArray<SubsystemContext>,
  lockedGroups: Array<ThreadGroup>,
  owner: object,
): Generator<PromiseLike<unknown>, void, Settled> {
  for (const group of lockedGroups) group.lock.releaseWrite(owner)
  if (lockedGroups.length > 0) lockedGroups.length = 0
  tx.phase = 'postAttach'
  for (const ctx of contexts) {
    const post = ctx.subsystem.postAttach
    if (post === undefined) continue
    let outcome = invoke(post, ctx)
    if (outcome.ok && isPromiseLike(outcome.value)) {
          outcome = yield outcome.value
          tx.host.trace.tick()
        }
    recordInfallible(tx, ctx, 'postAttach', outcome, true)
  }
  tx.releaseAll()
}

// Callbacks that cannot fail: a throw, a rejection or a forbidden promise is
// recorded as a fault in the trace and the transaction goes on.
const recordInfallible = (
  tx: Transaction,
  ctx: SubsystemContext,
  phase: AttachPhase,
  outcome: Settled,
  maySleep: boolean,
): void => {
  let detail: string | undefined
  if (!outcome.ok) detail = outcome.error instanceof LockRuleBroken ? outcome.error.message : `threw: ${String(outcome.error)}`
  else if (!maySleep && isPromiseLike(outcome.value)) detail = 'returned a promise where it may not sleep'
  tx.host.trace.record(tx.id, ctx.subsystem.name, phase, detail === undefined ? 'ok' : 'fault', detail)
}

const tidsOf = (entries: ReadonlyArray<MigrationEntry>): Array<number> => {
  const tids: Array<number> = []
  for (const entry of entries) tids.push(entry.task.tid)
  return tids
}

const namesOf = (contexts: ReadonlyArray<SubsystemContext>): Array<string> => {
  const names: Array<string> = []
  for (const ctx of contexts) names.push(ctx.subsystem.name)
  return names
}

const ordered = <A>(order: 'reverse' | 'kernel', items: ReadonlyArray<A>): ReadonlyArray<A> =>
  order === 'reverse' ? [...items].reverse() : items

const describeFailure = (error: SystemError): string =>
  error.fault !== undefined ? `${error.fault.kind}: ${error.message}` : error.errno

const badDestination = (refs: unknown, i: number, value: unknown, expected = 'a mounted hierarchy'): CgtxError => ({
  _tag: 'BadArgument',
  field: `request.to${Array.isArray(refs) ? `.${i}` : ''}.hierarchy`,
  value,
  expected,
  message: `request.to: expected ${expected}, got ${JSON.stringify(value)}`,
})

/**
 * @internal Write-locks the thread group of `leader` and of every task in
 * `sources`, in tgid order, re-scanning until no new process appeared while
 * waiting (a fork in an unlocked process could add one). False if it would
 * have to wait and may not.
 */
export function* lockThreadGroups(
  leader: Task | undefined,
  sources: ReadonlyArray<Cgroup>,
  owner: object,
  locked: Array<ThreadGroup>,
  sleep: boolean,
): Generator<PromiseLike<unknown>, boolean, Settled> {
  // One process and nobody queued: the common case, no set, no sort.
  if (sources.length === 0 && leader !== undefined && locked.length === 0 && leader.group.lock.tryWrite(owner)) {
    locked.push(leader.group)
    return true
  }
  for (;;) {
    const wanted = new Set<ThreadGroup>()
    if (leader !== undefined) wanted.add(leader.group)
    for (const source of sources) for (const task of source.tasks()) wanted.add(task.group)
    for (const group of locked) wanted.delete(group)
    if (wanted.size === 0) return true
    for (const group of [...wanted].sort((a, b) => a.tgid - b.tgid)) {
      if (!group.lock.tryWrite(owner)) {
        if (!sleep) return false
        yield group.lock.write(owner) as Promise<void>
      }
      locked.push(group)
    }
  }
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

/** @internal The css_set a task in `from` ends up in when its cgroups in the destinations' hierarchies change. */
export const destinationCssSet = (host: Host, from: CssSet, destinations: ReadonlyArray<Cgroup>): CssSet => {
  if (destinations.length === 1) {
    const dst = destinations[0]!
    if (from.movesGeneration !== host.cssGeneration) {
      from.moves.clear()
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
