/**
 * One workqueue: queueing (plain, for a cgroup, delayed) onto the pwq of
 * the right pool, max_active through its pwqs, flush colours, drain and
 * destroy, with the kernel's CMWQ semantics (workqueue-anchors §1) and the
 * WQ_CGROUP rules of the 2019 RFC (§2); and the functions callers use on a
 * workqueue, which decode their arguments.
 *
 * Every call decodes its input; a refusal is a `BadArgument` or a
 * `SystemError` returned synchronously and changes nothing. Queueing returns
 * `Right(true)` if the work was queued and `Right(false)` if it was already
 * pending (nothing changes then), like `queue_work`.
 *
 * @module workqueue
 */
import * as E from 'fp-ts/lib/Either.js'
import { badArgument, decode, systemError, type Cgroup, type CgtxError } from '@cgtx/core'
import { Delay, QueueOptions, WQ_DFL_ACTIVE, type Strategy, type Threads, type WorkqueueOptions } from './codecs.ts'
import { currentSlot, runningCpu } from './context.ts'
import type { Pool } from './internal/pool.ts'
import { Pwq, type PwqOwner } from './internal/pwq.ts'
import type { Worker } from './internal/worker.ts'
import { Place, Work, notAWork } from './work.ts'
import type { WorkqueueSystem } from './system.ts'

/** @internal Queueing's answers: queued, or already pending. */
export const RIGHT_TRUE: E.Either<never, boolean> = E.right(true)
/** @internal */
export const RIGHT_FALSE: E.Either<never, boolean> = E.right(false)

/** One workqueue. Create it with {@link WorkqueueSystem.createWorkqueue}. */
export class Workqueue implements PwqOwner {
  readonly name: string
  readonly maxActive: number
  readonly strategy: Strategy | undefined
  readonly cpuIntensive: boolean
  readonly unbound: boolean
  readonly cgroupAware: boolean
  readonly ordered: boolean
  readonly highpri: boolean
  readonly threads: Threads
  /** Unbound workqueues: the CPUs their workers may use (undefined: all). */
  readonly cpumask: ReadonlyArray<number> | undefined
  /** The rescuer's pool (one dedicated thread), for WQ_MEM_RECLAIM workqueues. */
  rescuer: Pool | undefined = undefined
  private isDestroyed = false
  private isDraining = false
  // Open to plain works from anyone: not WQ_CGROUP, not draining, not
  // destroyed. One field for the common queueing path to test, kept in step
  // with the three: each truth test of a boolean field costs V8 a cascade of
  // type checks (see Pool.concurrencyManaged), ≈ 7 % of a no-op work's
  // instructions for the three.
  private openToPlainWork: boolean
  /** @internal Unbound: active instances over all pwqs. */
  activeTotal = 0
  /** @internal Unbound: pwqs waiting for room under max_active, in turn. */
  readonly waiting: Array<Pwq> = []
  /**
   * Most instances ever active at once, counted as max_active counts them:
   * in one pwq for a bound workqueue, over all pwqs for an unbound one.
   */
  peakActive = 0
  /** @internal Delayed works whose timer is armed. */
  readonly delayed = new Set<Work>()
  /** @internal */
  readonly pwqs = new Map<Pool, Pwq>()
  // The pwq of an unbound workqueue in its shared unbound pool.
  private sharedUnboundPwq: Pwq | undefined = undefined
  // Per-CPU pwqs of a bound shared workqueue, by CPU.
  private readonly percpuPwqs: Array<Pwq> = []
  // Bound, on the shared per-CPU pools (no eager or lazy threads of its own).
  // Tested with `=== true`, like Pool.concurrencyManaged.
  private readonly percpuShared: boolean
  /** @internal Dedicated per-CPU pools of eager and lazy workqueues. */
  readonly dedicated: Array<Pool | undefined> = []
  // Flush colours: works queued since the last flush have the open colour
  // `color` and are counted in `openCount`; each flush closes it. Closed
  // colours colorBase..color-1 still in flight are counted in `colorCounts`.
  // (The open colour's count is a field, not an array slot: it changes on
  // every queueing and every finish.)
  private color = 0
  private openCount = 0
  private colorBase = 0
  private readonly colorCounts: Array<number> = []
  private flushers: Array<{ readonly color: number; readonly resolve: () => void }> = []

  /** @internal */
  constructor(
    readonly system: WorkqueueSystem,
    options: WorkqueueOptions,
  ) {
    const flags = options.flags ?? {}
    this.name = options.name
    this.ordered = options.ordered ?? false
    this.unbound = this.ordered || (flags.unbound ?? false)
    this.cgroupAware = flags.cgroup ?? false
    this.highpri = flags.highpri ?? false
    this.cpuIntensive = flags.cpuIntensive ?? false
    this.threads = options.threads ?? 'shared'
    this.percpuShared = !this.unbound && this.threads === 'shared'
    this.cpumask = options.cpus === undefined ? undefined : [...new Set(options.cpus)].sort((a, b) => a - b)
    this.openToPlainWork = !this.cgroupAware
    this.strategy = this.cgroupAware ? (options.strategy ?? 'migrate') : undefined
    this.maxActive = this.ordered ? 1 : options.maxActive === undefined || options.maxActive === 0 ? WQ_DFL_ACTIVE : options.maxActive
  }

  /** Destroyed: every further call on it is refused with ENODEV. */
  get destroyed(): boolean {
    return this.isDestroyed
  }

  /** Draining: only its own works may queue on it. */
  get draining(): boolean {
    return this.isDraining
  }

  /** Instances queued (not delayed) or running: the sum of the flush colours' counts. */
  get inFlight(): number {
    let total = this.openCount
    for (const count of this.colorCounts) total += count
    return total
  }

  /** queue_work / queue_work_on: see {@link queueWork}. */
  queue(work: unknown, options?: unknown): E.Either<CgtxError, boolean> {
    // The common call (a Work, no options, a workqueue open to plain works)
    // stays small enough to be inlined into its caller.
    if (options !== undefined || this.openToPlainWork !== true || !(work instanceof Work))
      return this.queueChecked(work, options)
    if (!work.claimPending()) return RIGHT_FALSE
    this.insert(work, undefined, undefined)
    return RIGHT_TRUE
  }

  private queueChecked(work: unknown, options: unknown): E.Either<CgtxError, boolean> {
    if (!(work instanceof Work)) return notAWork(work)
    let cpu: number | undefined
    if (options !== undefined) {
      const decoded = this.decodeCpu(options)
      if (E.isLeft(decoded)) return decoded
      cpu = decoded.right
    }
    const refused = this.refuse('queue_work', false)
    if (refused !== undefined) return E.left(refused)
    if (!work.claimPending()) return RIGHT_FALSE
    this.insert(work, cpu, undefined)
    return RIGHT_TRUE
  }

  /** queue_cgroup_work: see {@link queueCgroupWork}. */
  queueCgroup(work: unknown, cgroup: unknown): E.Either<CgtxError, boolean> {
    if (!(work instanceof Work)) return notAWork(work)
    const target = this.system.resolveTarget(cgroup, 'cgroup')
    if (E.isLeft(target)) return target
    const refused = this.refuse('queue_cgroup_work', true)
    if (refused !== undefined) return E.left(refused)
    if (!work.claimPending()) return RIGHT_FALSE
    this.system.take(target.right)
    this.insert(work, undefined, target.right)
    return RIGHT_TRUE
  }

  /**
   * queue_delayed_work: queues `work` after `delayMs` of the system's clock
   * (at once for 0). `options.cgroup` is required on a cgroup workqueue and
   * refused on a plain one; `options.cpu` picks the CPU of a bound one.
   */
  queueDelayed(work: unknown, delayMs: unknown, options: unknown = {}): E.Either<CgtxError, boolean> {
    if (!(work instanceof Work)) return notAWork(work)
    const delay = decode(Delay, delayMs, 'delayMs')
    if (E.isLeft(delay)) return delay
    if (typeof options !== 'object' || options === null) return E.left(badArgument('options', options, '{ cpu?, cgroup? }'))
    const { cgroup, ...rest } = options as { cgroup?: unknown }
    const cpu = this.decodeCpu(rest)
    if (E.isLeft(cpu)) return cpu
    let target: ReadonlyArray<Cgroup> | undefined
    if (cgroup !== undefined) {
      const resolved = this.system.resolveTarget(cgroup, 'options.cgroup')
      if (E.isLeft(resolved)) return resolved
      target = resolved.right
    }
    const refused = this.refuse('queue_delayed_work', target !== undefined)
    if (refused !== undefined) return E.left(refused)
    if (!work.claimPending()) return RIGHT_FALSE
    if (target !== undefined) this.system.take(target)
    if (delay.right === 0) {
      this.insert(work, cpu.right, target)
      return RIGHT_TRUE
    }
    work.waitIn(Place.timer)
    work.holder = this
    work.cgroups = target
    this.delayed.add(work)
    work.timer = this.system.clock.setTimer(delay.right, () => {
      work.timer = undefined
      this.delayed.delete(work)
      this.insert(work, cpu.right, target)
    })
    return RIGHT_TRUE
  }

  /** flush_workqueue: resolves once every work queued before the call has finished. */
  flush(): Promise<void> {
    const color = this.color
    this.color++
    this.colorCounts.push(this.openCount)
    this.openCount = 0
    this.retireSettledColours()
    if (color < this.colorBase) return Promise.resolve()
    return new Promise((resolve) => this.flushers.push({ color, resolve }))
  }

  /**
   * drain_workqueue: flushes until nothing is queued or running. Meanwhile
   * only works running on this workqueue may queue on it (chained work);
   * other queue attempts are refused with EBUSY.
   */
  async drain(): Promise<void> {
    this.isDraining = true
    this.openToPlainWork = false
    try {
      while (this.inFlight > 0) await this.flush()
    } finally {
      this.isDraining = false
      this.openToPlainWork = !this.cgroupAware && !this.isDestroyed
    }
  }

  /**
   * destroy_workqueue: refused with EBUSY while a work is queued or running;
   * armed delayed works are cancelled (their cgroup references released);
   * the workqueue's own threads (rescuer, eager / lazy threads) exit.
   */
  destroySync(): E.Either<CgtxError, void> {
    if (this.destroyed) return E.left(systemError('ENODEV', `destroy_workqueue ${this.name}`, { reason: 'already destroyed' }))
    if (this.inFlight > 0)
      return E.left(systemError('EBUSY', `destroy_workqueue ${this.name}`, { reason: `${this.inFlight} work(s) queued or running` }))
    for (const work of [...this.delayed]) {
      this.system.steal(work)
      work.pending = false
    }
    this.isDestroyed = true
    this.openToPlainWork = false
    for (const pool of [...this.dedicated, this.rescuer]) {
      if (pool === undefined) continue
      pool.dying = true
      for (const worker of [...pool.idle]) worker.destroy()
    }
    this.system.forgetWorkqueue(this)
    return E.right(undefined)
  }

  /** Drains, then {@link Workqueue.destroySync}. */
  async destroy(): Promise<E.Either<CgtxError, void>> {
    if (this.destroyed) return this.destroySync()
    await this.drain()
    return this.destroySync()
  }

  /** @internal Bookkeeping of a finished or stolen instance. */
  instanceDone(color: number): void {
    // No flusher waits for the open colour; one can only be woken when a closed colour empties.
    if (color === this.color) this.openCount--
    else if (--this.colorCounts[color - this.colorBase]! === 0) this.colourSettled()
  }

  /** @internal */
  pwqOf(pool: Pool): Pwq {
    let pwq = this.pwqs.get(pool)
    if (pwq === undefined) {
      pwq = new Pwq(this, pool)
      this.pwqs.set(pool, pwq)
    }
    return pwq
  }

  private decodeCpu(options: unknown): E.Either<CgtxError, number | undefined> {
    const decoded = decode(QueueOptions, options, 'options')
    if (E.isLeft(decoded)) return decoded
    const cpu = decoded.right.cpu
    if (cpu !== undefined && cpu >= this.system.host.cpus) return E.left(badArgument('options.cpu', cpu, `a cpu below ${this.system.host.cpus}`))
    return E.right(cpu)
  }

  private refuse(operation: string, cgroupWork: boolean): CgtxError | undefined {
    if (this.destroyed) return systemError('ENODEV', `${operation} ${this.name}`, { reason: 'workqueue destroyed' })
    if (cgroupWork && !this.cgroupAware)
      return systemError('EINVAL', `${operation} ${this.name}`, { reason: 'a cgroup work on a workqueue without WQ_CGROUP' })
    if (!cgroupWork && this.cgroupAware)
      return systemError('EINVAL', `${operation} ${this.name}`, { reason: 'a plain work on a WQ_CGROUP workqueue (use queueCgroupWork)' })
    if (this.draining) {
      const slot = currentSlot()
      if (slot === undefined || slot.owner !== this)
        return systemError('EBUSY', `${operation} ${this.name}`, { reason: 'draining: only chained work may queue' })
    }
    return undefined
  }

  private insert(work: Work, cpu: number | undefined, target: ReadonlyArray<Cgroup> | undefined): void {
    // A work that is not pending has no target: only a cgroup work stores one.
    if (target !== undefined) work.cgroups = target
    work.color = this.color
    this.openCount++
    this.pwqFor(work, cpu, target).add(work)
  }

  // The common cases first, so that the search (findPwq) stays out of the
  // queueing path V8 inlines into callers: a bound shared workqueue with a
  // work that is not running, and a plain work on an unbound one.
  private pwqFor(work: Work, cpu: number | undefined, target: ReadonlyArray<Cgroup> | undefined): Pwq {
    if (this.percpuShared === true) {
      if (work.runningOn === undefined) {
        const pwq = this.percpuPwqs[cpu ?? runningCpu() ?? 0]
        if (pwq !== undefined) return pwq
      }
    } else if (target === undefined && this.sharedUnboundPwq !== undefined) return this.sharedUnboundPwq
    return this.findPwq(work, cpu, target)
  }

  private findPwq(work: Work, cpu: number | undefined, target: ReadonlyArray<Cgroup> | undefined): Pwq {
    const system = this.system
    // Non-reentrancy: a work still running on one of our pools is queued behind itself there.
    const runner = work.runningOn as Worker | undefined
    if (runner !== undefined && this.percpuShared) {
      const pwq = this.pwqs.get(runner.pool)
      if (pwq !== undefined) return pwq
    }
    if (this.threads !== 'shared') return this.dedicatedPwq(work, cpu ?? runningCpu() ?? 0)
    if (!this.unbound) {
      // The local CPU: that of the work running synchronously, else CPU 0.
      const at = cpu ?? runningCpu() ?? 0
      return (this.percpuPwqs[at] ??= this.pwqOf(system.percpuPool(at, this.highpri)))
    }
    if (this.strategy === 'pools' && target !== undefined && target.some((cgroup) => !cgroup.isRoot)) {
      const pool = system.cgroupPool(target)
      if (!pool.dying) return this.pwqOf(pool)
    }
    // Unbound pools live as long as the system: found once, then remembered.
    this.sharedUnboundPwq ??= this.pwqOf(system.unboundPool(this.strategy ?? 'plain', this.highpri, this.cpumask))
    return this.sharedUnboundPwq
  }

  private dedicatedPwq(work: Work, cpu: number): Pwq {
    const pool = this.dedicated[cpu]
    if (this.threads === 'eager' || (pool !== undefined && pool.workers.size > 0)) return this.pwqOf(pool!)
    // Lazy: the core thread creates this CPU's thread and hands the work over.
    work.handoverTo = cpu
    return this.pwqOf(this.dedicated[0]!)
  }

  // Forgets the oldest closed colours once nothing of theirs is in flight
  // (so flushing an idle workqueue keeps no state).
  private retireSettledColours(): void {
    while (this.colorBase < this.color && this.colorCounts[0] === 0) {
      this.colorCounts.shift()
      this.colorBase++
    }
  }

  // A closed colour has nothing left in flight: the flushers of the colours
  // before the first one still in flight wake.
  private colourSettled(): void {
    this.retireSettledColours()
    if (this.flushers.length === 0) return
    const still: typeof this.flushers = []
    for (const flusher of this.flushers) {
      if (flusher.color < this.colorBase) flusher.resolve()
      else still.push(flusher)
    }
    this.flushers = still
  }
}

// ---------------------------------------------------------------- functions

// The functions take the workqueue from callers that may not be typed: a
// non-workqueue is a BadArgument, not a TypeError from inside.
const notAWorkqueue = (wq: unknown): E.Either<CgtxError, never> => E.left(badArgument('wq', wq, 'a Workqueue made by WorkqueueSystem.createWorkqueue'))
const RIGHT_VOID: E.Either<never, void> = E.right(undefined)

/**
 * queue_work_on: queues `work` on `wq` (on `options.cpu` for a bound
 * workqueue; default the CPU of the per-CPU work calling synchronously,
 * else CPU 0 — after an `await` a work names its CPU explicitly).
 * `Right(false)` if it was already pending — nothing changes then.
 * Refused: a destroyed workqueue (ENODEV), a WQ_CGROUP workqueue (EINVAL:
 * use {@link queueCgroupWork}), a draining one unless called from its own
 * work (EBUSY).
 */
export const queueWork = (wq: Workqueue, work: unknown, options?: unknown): E.Either<CgtxError, boolean> =>
  wq instanceof Workqueue ? wq.queue(work, options) : notAWorkqueue(wq)

/**
 * queue_cgroup_work: queues `work` on a WQ_CGROUP workqueue for `cgroup`
 * (one cgroup ref, or one per hierarchy, or a `Cgroup` of the host, which
 * needs no decoding). A reference on the cgroup is held
 * from now until the instance finishes, is cancelled, or its workqueue is
 * destroyed. Refused: a workqueue without WQ_CGROUP (EINVAL), a missing
 * cgroup (ENOENT) or one being removed (ENODEV).
 */
export const queueCgroupWork = (wq: Workqueue, work: unknown, cgroup: unknown): E.Either<CgtxError, boolean> =>
  wq instanceof Workqueue ? wq.queueCgroup(work, cgroup) : notAWorkqueue(wq)

/** queue_delayed_work: see {@link Workqueue.queueDelayed}. */
export const queueDelayedWork = (wq: Workqueue, work: unknown, delayMs: unknown, options?: unknown): E.Either<CgtxError, boolean> =>
  wq instanceof Workqueue ? wq.queueDelayed(work, delayMs, options) : notAWorkqueue(wq)

/** flush_workqueue: see {@link Workqueue.flush}. Resolves `Right` once flushed; a non-workqueue is a `BadArgument`. */
export const flushWorkqueue = (wq: Workqueue): Promise<E.Either<CgtxError, void>> =>
  wq instanceof Workqueue ? wq.flush().then(() => RIGHT_VOID) : Promise.resolve(notAWorkqueue(wq))

/** drain_workqueue: see {@link Workqueue.drain}. Resolves `Right` once drained; a non-workqueue is a `BadArgument`. */
export const drainWorkqueue = (wq: Workqueue): Promise<E.Either<CgtxError, void>> =>
  wq instanceof Workqueue ? wq.drain().then(() => RIGHT_VOID) : Promise.resolve(notAWorkqueue(wq))

/** destroy_workqueue: see {@link Workqueue.destroy}. */
export const destroyWorkqueue = (wq: Workqueue): Promise<E.Either<CgtxError, void>> =>
  wq instanceof Workqueue ? wq.destroy() : Promise.resolve(notAWorkqueue(wq))
