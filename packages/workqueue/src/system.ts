/**
 * The workqueue system of one {@link Host}: its worker pools, its
 * workqueues and the operations on works — queue, queue for a cgroup,
 * delayed queueing, flush, drain, cancel, destroy — with the kernel's CMWQ
 * semantics (workqueue-anchors §1) and the cgroup-aware designs of the 2016
 * and 2019 RFCs (§2, §3) and the lazy workqueues of 2009 (§4).
 *
 * Every call decodes its input; a refusal is a `BadArgument` or a
 * `SystemError` returned synchronously and changes nothing. Queueing returns
 * `Right(true)` if the work was queued and `Right(false)` if it was already
 * pending (nothing changes then), like `queue_work`.
 *
 * @module system
 */
import * as E from 'fp-ts/lib/Either.js'
import type * as t from 'io-ts'
import {
  badArgument,
  Cgroup,
  decode,
  systemError,
  type CgroupRef,
  type CgtxError,
  type Clock,
  type Hierarchy,
  type Host,
  type Task,
} from '@cgtx/core'
import {
  CgroupTarget,
  Delay,
  QueueOptions,
  SystemOptions,
  WQ_DFL_ACTIVE,
  WorkqueueOptions,
  type Strategy,
  type Threads,
} from './codecs.ts'
import { chargeCgroupOf, currentSlot, runningCpu, type WorkerSlot } from './context.ts'
import { CpuScheduler, unlimitedCpu, type CpuPolicy, type CpuStat } from './cpu.ts'
import { Pool, Pwq, Worker, type PoolHost, type PwqOwner } from './internal/pool.ts'
import { Place, Work, WorkCodec, type WorkFailure } from './work.ts'
import type { MemorySubsystem } from '@cgtx/subsystems'

/**
 * Resource controllers the workers are throttled by. `cpu` supplies
 * `cpu.weight` / `cpu.max` to the CPU scheduler and receives the usage;
 * `cpuset` restricts the CPUs a work's burns may use.
 */
export interface Controllers {
  readonly cpu?: CpuPolicy
  readonly cpuset?: {
    /** Hierarchy the cpuset controller is bound to. */
    readonly hierarchy: string
    /** `cpuset.cpus.effective` of a cgroup (undefined: all CPUs). */
    cpus(cgroup: Cgroup): ReadonlyArray<number> | undefined
  }
  /** The memory controller {@link allocate} charges through. */
  readonly memory?: Pick<MemorySubsystem, 'charge' | 'uncharge'>
}

// The codec explains why the argument is not a work.
const notAWork = (work: unknown): E.Either<CgtxError, never> => {
  const decoded = decode(WorkCodec, work, 'work')
  return E.isLeft(decoded) ? decoded : E.left(badArgument('work', work, 'Work'))
}

const RIGHT_TRUE: E.Either<never, boolean> = E.right(true)
const RIGHT_FALSE: E.Either<never, boolean> = E.right(false)

/** A snapshot of one pool, for tests and reports. */
export interface PoolSummary {
  readonly id: number
  readonly kind: string
  readonly cpu: number | undefined
  readonly cgroups: ReadonlyArray<string> | undefined
  readonly workers: number
  readonly idle: number
  readonly pending: number
  readonly creationFailures: number
}

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
    else this.closedColourDone(color)
  }

  // Out of line: instanceDone is inlined into the worker loop, whose inlining
  // budget (V8's, in bytecode) it shares with the rest of a run.
  private closedColourDone(color: number): void {
    if (--this.colorCounts[color - this.colorBase]! === 0 && this.flushers.length > 0) this.wakeFlushers()
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

  private wakeFlushers(): void {
    this.retireSettledColours()
    const still: typeof this.flushers = []
    for (const flusher of this.flushers) {
      if (flusher.color < this.colorBase) flusher.resolve()
      else still.push(flusher)
    }
    this.flushers = still
  }
}

/** The workqueues and worker pools of one host. Build it with {@link WorkqueueSystem.create}. */
export class WorkqueueSystem implements PoolHost {
  readonly clock: Clock
  readonly idleTimeoutMs: number
  readonly lazyIdleTimeoutMs: number
  readonly createCooldownMs: number
  readonly maydayInitialMs: number
  readonly maydayIntervalMs: number
  /** Works that threw or rejected, oldest first. */
  readonly failures: Array<WorkFailure> = []
  readonly scheduler: CpuScheduler
  /** Hierarchy CPU time is accounted in. */
  readonly cpuHierarchy: Hierarchy | undefined
  readonly controllers: Controllers
  private readonly spawn: (comm: string, perCpu: boolean) => E.Either<CgtxError, Task>
  private readonly percpu: Array<Pool> = []
  private readonly percpuHigh: Array<Pool> = []
  private readonly unboundPools = new Map<string, Pool>()
  private readonly cgroupPools = new Map<string, Pool>()
  private readonly pools = new Set<Pool>()
  private readonly workqueues = new Set<Workqueue>()
  private readonly refs = new Map<Cgroup, number>()
  private readonly removals = new Map<Cgroup, { readonly ref: CgroupRef; readonly waiters: Array<(result: E.Either<CgtxError, void>) => void> }>()
  /** Number of cgroup-pool searches and how many found an existing pool. */
  poolSearches = 0
  poolHits = 0

  private constructor(
    readonly host: Host,
    options: t.TypeOf<typeof SystemOptions>,
  ) {
    this.clock = host.clock
    this.idleTimeoutMs = options.idleTimeoutMs ?? 300_000
    this.lazyIdleTimeoutMs = options.lazyIdleTimeoutMs ?? 5_000
    this.createCooldownMs = options.createCooldownMs ?? 1_000
    this.maydayInitialMs = options.maydayInitialMs ?? 10
    this.maydayIntervalMs = options.maydayIntervalMs ?? 100
    this.controllers = (options.controllers ?? {}) as Controllers
    const custom = options.spawnWorker as ((host: Host, comm: string) => E.Either<CgtxError, Task>) | undefined
    this.spawn =
      custom === undefined
        ? (comm, perCpu) => host.createKernelThread({ comm, noSetAffinity: perCpu })
        : (comm) => custom(host, comm)
    this.cpuHierarchy = pickCpuHierarchy(host, options.cpuHierarchy)
    this.scheduler = new CpuScheduler(this.clock, host.cpus, this.controllers.cpu ?? unlimitedCpu, options.schedulerTickMs ?? 1)
    // The per-CPU pools (normal and high priority) exist from boot, each with one worker.
    for (let cpu = 0; cpu < host.cpus; cpu++) {
      this.percpu.push(this.newPool('percpu', cpu, undefined, {}, true))
      this.percpuHigh.push(this.newPool('percpu', cpu, undefined, { highpri: true }, true))
    }
  }

  /** Builds the workqueue system of `host`; bad options are a `BadArgument`. */
  static create(host: Host, options: unknown = {}): E.Either<CgtxError, WorkqueueSystem> {
    const decoded = decode(SystemOptions, options, 'options')
    if (E.isLeft(decoded)) return decoded
    if (decoded.right.cpuHierarchy !== undefined && host.hierarchy(decoded.right.cpuHierarchy) === undefined)
      return E.left(badArgument('options.cpuHierarchy', decoded.right.cpuHierarchy, 'a mounted hierarchy'))
    return E.right(new WorkqueueSystem(host, decoded.right))
  }

  /**
   * alloc_workqueue. Refused (`BadArgument`): `cgroup` without `unbound`,
   * a strategy without `cgroup`, `eager` / `lazy` threads on an unbound
   * workqueue, `ordered` with another `maxActive` than 1 or with `pools`.
   * A WQ_MEM_RECLAIM workqueue gets its rescuer thread now (ENOMEM-like
   * failure if it cannot be created).
   */
  createWorkqueue(options: unknown): E.Either<CgtxError, Workqueue> {
    const decoded = decode(WorkqueueOptions, options, 'options')
    if (E.isLeft(decoded)) return decoded
    const unknown = unknownKey(options, ['name', 'flags', 'maxActive', 'ordered', 'strategy', 'threads', 'cpus'], 'options') ??
      unknownKey((options as { flags?: unknown }).flags, ['unbound', 'cgroup', 'memReclaim', 'highpri', 'cpuIntensive'], 'options.flags')
    if (unknown !== undefined) return E.left(unknown)
    const spec = decoded.right
    const flags = spec.flags ?? {}
    const unbound = (flags.unbound ?? false) || (spec.ordered ?? false)
    if (flags.cgroup === true && !unbound)
      return E.left(badArgument('options.flags.cgroup', true, 'WQ_CGROUP only together with WQ_UNBOUND'))
    if (spec.strategy !== undefined && flags.cgroup !== true)
      return E.left(badArgument('options.strategy', spec.strategy, 'a strategy only with WQ_CGROUP'))
    if (spec.threads !== undefined && spec.threads !== 'shared' && (unbound || flags.highpri === true))
      return E.left(badArgument('options.threads', spec.threads, "'eager' and 'lazy' only for bound, normal-priority workqueues"))
    if (spec.ordered === true && spec.maxActive !== undefined && spec.maxActive !== 1)
      return E.left(badArgument('options.maxActive', spec.maxActive, 'ordered workqueues run one work at a time'))
    if (spec.cpus !== undefined && (!unbound || spec.cpus.length === 0 || spec.cpus.some((cpu) => cpu >= this.host.cpus)))
      return E.left(badArgument('options.cpus', spec.cpus, `a non-empty list of cpus below ${this.host.cpus}, for an unbound workqueue`))
    if (spec.ordered === true && spec.strategy === 'pools')
      return E.left(badArgument('options.strategy', 'pools', 'ordered workqueues cannot spread over per-cgroup pools'))
    if ([...this.workqueues].some((wq) => wq.name === spec.name))
      return E.left(systemError('EEXIST', `alloc_workqueue ${spec.name}`))
    const wq = new Workqueue(this, spec)
    const cleanup = (): void => {
      for (const pool of [...wq.dedicated, wq.rescuer]) if (pool !== undefined) for (const worker of [...pool.idle]) worker.destroy()
    }
    if (wq.threads !== 'shared') {
      const cpus = wq.threads === 'eager' ? this.host.cpus : 1
      for (let cpu = 0; cpu < this.host.cpus; cpu++) {
        const pool = this.newPool('dedicated', cpu, undefined, { lazy: wq.threads === 'lazy' && cpu !== 0, name: wq.name }, false)
        wq.dedicated[cpu] = pool
        if (cpu < cpus && !pool.createWorker()) {
          cleanup()
          return E.left(systemError('ENOMEM', `alloc_workqueue ${spec.name}`, { reason: `cannot create the thread for cpu ${cpu}` }))
        }
      }
    }
    if (flags.memReclaim === true) {
      const rescuer = this.newPool('rescuer', undefined, undefined, { name: `${wq.name}/rescuer` }, false)
      if (!rescuer.createWorker()) {
        cleanup()
        return E.left(systemError('ENOMEM', `alloc_workqueue ${spec.name}`, { reason: 'cannot create the rescuer' }))
      }
      wq.rescuer = rescuer
    }
    this.workqueues.add(wq)
    return E.right(wq)
  }

  /** Every live worker task (pool workers, dedicated threads, rescuers). */
  workerTasks(): Array<Task> {
    const tasks: Array<Task> = []
    for (const pool of this.pools) for (const worker of pool.workers) tasks.push(worker.task)
    return tasks
  }

  /** Pool snapshots. */
  poolSummaries(): Array<PoolSummary> {
    return [...this.pools].map((pool) => ({
      id: pool.id,
      kind: pool.kind,
      cpu: pool.cpu,
      cgroups: pool.cgroups?.map((cgroup) => `${cgroup.hierarchy.name}:${cgroup.path}`),
      workers: pool.workers.size,
      idle: pool.nrIdle,
      pending: pool.worklist.length,
      creationFailures: pool.creationFailures,
    }))
  }

  /** Queue-time references currently held on `cgroup` (a ref or a Cgroup). */
  cgroupRefs(cgroup: unknown): number {
    if (cgroup instanceof Cgroup) return this.refs.get(cgroup) ?? 0
    const found = this.host.cgroup(cgroup)
    return E.isLeft(found) ? 0 : (this.refs.get(found.right) ?? 0)
  }

  /** References held on all cgroups together. */
  totalCgroupRefs(): number {
    let total = 0
    for (const count of this.refs.values()) total += count
    return total
  }

  /** CPU time accounted to a cgroup of the CPU hierarchy. */
  cpuStat(ref: unknown): E.Either<CgtxError, CpuStat> {
    const found = this.host.cgroup(ref)
    if (E.isLeft(found)) return found
    return E.right(this.scheduler.stat(found.right))
  }

  /**
   * rmdir of a cgroup that may hold workers: refused (EBUSY) if it has
   * children or tasks other than workers; otherwise new works for it are
   * refused (ENODEV), works already queued for it run in the root, its
   * per-cgroup pool is retired, and the removal completes once the last
   * worker has left.
   */
  removeCgroup(ref: unknown): Promise<E.Either<CgtxError, void>> {
    const found = this.host.cgroup(ref)
    if (E.isLeft(found)) return Promise.resolve(found)
    const cgroup = found.right
    const operation = `rmdir ${cgroup.hierarchy.name}:${cgroup.path}`
    if (cgroup.isRoot) return Promise.resolve(E.left(systemError('EBUSY', operation, { reason: 'root' })))
    if (cgroup.children.size > 0) return Promise.resolve(E.left(systemError('EBUSY', operation, { reason: 'has children' })))
    const workers = new Set(this.workerTasks())
    for (const task of cgroup.tasks())
      if (!workers.has(task)) return Promise.resolve(E.left(systemError('EBUSY', operation, { reason: `task ${task.tid} is not a worker` })))
    const decodedRef = { hierarchy: cgroup.hierarchy.name, path: cgroup.path }
    const pending = this.removals.get(cgroup)
    const waiting = new Promise<E.Either<CgtxError, void>>((resolve) => {
      if (pending !== undefined) pending.waiters.push(resolve)
      else this.removals.set(cgroup, { ref: decodedRef as CgroupRef, waiters: [resolve] })
    })
    for (const pool of [...this.cgroupPools.values()]) if (pool.cgroups!.includes(cgroup)) pool.orphan()
    this.workerLeft()
    return waiting
  }

  // ------------------------------------------------------------ internals

  /** @internal */
  resolveTarget(input: unknown, field: string): E.Either<CgtxError, ReadonlyArray<Cgroup>> {
    // A Cgroup of this host needs no decoding.
    if (input instanceof Cgroup && this.host.hierarchies[input.hierarchy.index] === input.hierarchy) {
      if (input.dead || this.removals.has(input))
        return E.left(systemError('ENODEV', `queue for ${input.hierarchy.name}:${input.path}`, { reason: 'cgroup removed' }))
      return E.right([input])
    }
    // One ref naming a live cgroup needs no decoding either (see Host.findCgroup).
    const found = this.host.findCgroup(input)
    if (found !== undefined) {
      if (this.removals.has(found)) return E.left(systemError('ENODEV', `queue for ${found.hierarchy.name}:${found.path}`, { reason: 'cgroup is being removed' }))
      return E.right([found])
    }
    const decoded = decode(CgroupTarget, input, field)
    if (E.isLeft(decoded)) return decoded
    const refs = Array.isArray(decoded.right) ? decoded.right : [decoded.right]
    if (refs.length === 0) return E.left(badArgument(field, input, 'at least one cgroup'))
    const cgroups: Array<Cgroup> = []
    for (const [i, ref] of refs.entries()) {
      const hierarchy = this.host.hierarchy(ref.hierarchy)
      if (hierarchy === undefined) return E.left(badArgument(`${field}.hierarchy`, ref.hierarchy, 'a mounted hierarchy'))
      const cgroup = hierarchy.lookup(ref.path)
      if (cgroup === undefined) return E.left(systemError('ENOENT', `lookup ${ref.hierarchy}:${ref.path}`))
      if (cgroup.dead || this.removals.has(cgroup))
        return E.left(systemError('ENODEV', `queue for ${ref.hierarchy}:${ref.path}`, { reason: 'cgroup is being removed' }))
      if (cgroups.some((other) => other.hierarchy === cgroup.hierarchy))
        return E.left(badArgument(`${field}.${i}.hierarchy`, ref.hierarchy, 'one cgroup per hierarchy'))
      cgroups.push(cgroup)
    }
    cgroups.sort((a, b) => a.hierarchy.index - b.hierarchy.index)
    return E.right(cgroups)
  }

  /** @internal Takes the queue-time references. */
  take(target: ReadonlyArray<Cgroup>): void {
    for (const cgroup of target) this.refs.set(cgroup, (this.refs.get(cgroup) ?? 0) + 1)
  }

  /** @internal */
  release(target: ReadonlyArray<Cgroup>): void {
    for (const cgroup of target) {
      const count = this.refs.get(cgroup)! - 1
      if (count === 0) this.refs.delete(cgroup)
      else this.refs.set(cgroup, count)
    }
  }

  /** @internal */
  percpuPool(cpu: number, highpri: boolean): Pool {
    return (highpri ? this.percpuHigh : this.percpu)[cpu]!
  }

  /** @internal Unbound pools are shared by workqueues with equal attributes. */
  unboundPool(kind: string, highpri: boolean, cpumask: ReadonlyArray<number> | undefined): Pool {
    const key = `${kind}${highpri ? ':H' : ''}${cpumask === undefined ? '' : `:${cpumask.join(',')}`}`
    let pool = this.unboundPools.get(key)
    if (pool === undefined) {
      pool = this.newPool('unbound', undefined, undefined, { highpri, ...(cpumask === undefined ? {} : { cpumask }) }, true)
      this.unboundPools.set(key, pool)
    }
    return pool
  }

  /** @internal The pool of a cgroup combination: searched first, created if missing. */
  cgroupPool(target: ReadonlyArray<Cgroup>): Pool {
    const key = target.map((cgroup) => cgroup.id).join(',')
    this.poolSearches++
    let pool = this.cgroupPools.get(key)
    if (pool !== undefined) {
      this.poolHits++
      return pool
    }
    pool = this.newPool('cgroup', undefined, target, {}, true)
    this.cgroupPools.set(key, pool)
    return pool
  }

  private newPool(kind: Pool['kind'], cpu: number | undefined, cgroups: ReadonlyArray<Cgroup> | undefined, options: Pool['options'], withWorker: boolean): Pool {
    const pool = new Pool(this, kind, cpu, cgroups, options)
    this.pools.add(pool)
    if (withWorker) pool.createWorker()
    return pool
  }

  /** @internal */
  forgetWorkqueue(wq: Workqueue): void {
    this.workqueues.delete(wq)
    for (const pool of [...wq.dedicated, wq.rescuer]) if (pool !== undefined && pool.workers.size === 0) this.pools.delete(pool)
  }

  /** @internal Takes a pending instance back from wherever it waits. */
  steal(work: Work): void {
    switch (work.place) {
      case Place.none:
        return
      case Place.timer: {
        work.timer?.cancel()
        work.timer = undefined
        ;(work.holder as Workqueue).delayed.delete(work)
        work.waitIn(Place.none)
        work.holder = undefined
        if (work.cgroups !== undefined) this.release(work.cgroups)
        work.cgroups = undefined
        work.pendingCancelled()
        return
      }
      case Place.worklist:
      case Place.mayday: {
        const pwq = work.pwq as Pwq
        const list = work.place === Place.mayday ? (work.holder as Pool).worklist : pwq.pool.worklist
        list.remove(work)
        this.retireStolen(work, pwq, true)
        return
      }
      case Place.deferred:
        this.retireStolen(work, work.pwq as Pwq, true)
        return
      case Place.scheduled: {
        const holder = work.holder as Worker
        holder.scheduled.splice(holder.scheduled.indexOf(work), 1)
        this.retireStolen(work, work.pwq as Pwq, true)
        return
      }
      case Place.inactive: {
        const pwq = work.pwq as Pwq
        pwq.inactive.remove(work)
        this.retireStolen(work, pwq, false)
        return
      }
    }
  }

  private retireStolen(work: Work, pwq: Pwq, active: boolean): void {
    const target = work.cgroups
    work.cgroups = undefined
    work.waitIn(Place.none)
    work.holder = undefined
    work.handoverTo = undefined
    work.pendingCancelled()
    pwq.retire(work.color, target, active)
  }

  // ------------------------------------------------------------ PoolHost

  /** @internal */
  spawnWorker(comm: string, perCpu: boolean): E.Either<CgtxError, Task> {
    return this.spawn(comm, perCpu)
  }

  /** @internal Burns simulated CPU as the slot's worker, in its cgroup (or charged remotely). */
  async burn(slot: WorkerSlot, ms: number): Promise<void> {
    const hierarchy = this.cpuHierarchy
    const root = hierarchy?.root
    const competes = hierarchy === undefined ? undefined : slot.task.cssSet.cgroup(hierarchy.index)
    const charged = hierarchy === undefined ? undefined : chargeCgroupOf(slot, hierarchy.name)
    const allowed = this.allowedCpus(slot)
    slot.setRunning(true)
    try {
      await this.scheduler.burn(ms, competes ?? root!, charged ?? competes ?? root!, allowed)
    } finally {
      slot.setRunning(false)
    }
  }

  /**
   * CPUs a work's burns may use: the pool's CPUs intersected with the
   * cpuset of the cgroup the worker is in (under `remote-charge` the
   * worker's, i.e. the root's: cpuset does not follow remote charges). An
   * empty intersection falls back to the pool's CPUs, as the kernel does for
   * a bound kworker whose cpuset excludes its CPU.
   */
  allowedCpus(slot: WorkerSlot): ReadonlyArray<number> | undefined {
    const cpuset = this.controllers.cpuset
    if (cpuset === undefined) return slot.cpus
    const hierarchy = this.host.hierarchy(cpuset.hierarchy)
    if (hierarchy === undefined) return slot.cpus
    const allowed = cpuset.cpus(slot.task.cssSet.cgroup(hierarchy.index))
    if (allowed === undefined) return slot.cpus
    if (slot.cpus === undefined) return allowed.length === 0 ? undefined : allowed
    const both = slot.cpus.filter((cpu) => allowed.includes(cpu))
    return both.length === 0 ? slot.cpus : both
  }

  /** @internal */
  recordFailure(work: Work, pwq: Pwq, worker: Worker, error: unknown): void {
    work.recordFailure(error)
    this.failures.push({ work, workqueue: pwq.wq.name, worker: worker.task.tid, error, at: this.clock.now() })
  }

  /** @internal */
  workerLeft(): void {
    if (this.removals.size === 0) return
    for (const [cgroup, removal] of [...this.removals]) {
      if (cgroup.populated) continue
      this.removals.delete(cgroup)
      void this.host.rmdir(removal.ref)().then((result) => {
        for (const resolve of removal.waiters) resolve(result)
      })
    }
  }

  /** @internal */
  isRemoving(cgroup: Cgroup): boolean {
    return this.removals.size > 0 && this.removals.has(cgroup)
  }

  /** @internal */
  poolEmpty(pool: Pool): void {
    this.pools.delete(pool)
    if (pool.cgroups === undefined) return
    const key = pool.cgroups.map((cgroup) => cgroup.id).join(',')
    if (this.cgroupPools.get(key) === pool) this.cgroupPools.delete(key)
    for (const wq of this.workqueues) {
      const pwq = wq.pwqs.get(pool)
      if (pwq === undefined) continue
      wq.pwqs.delete(pool)
      // Works still waiting on the pool's overflow list go to the root pool.
      for (const work of pwq.inactive.take(() => true)) this.fallbackPwq(pwq).add(work)
    }
  }

  /** @internal */
  orphaned(pool: Pool): void {
    if (pool.cgroups !== undefined) {
      const key = pool.cgroups.map((cgroup) => cgroup.id).join(',')
      if (this.cgroupPools.get(key) === pool) this.cgroupPools.delete(key)
    }
    for (const work of pool.worklist.take(() => true)) {
      const from = work.pwq as Pwq
      from.nrActive--
      from.wq.activeTotal--
      this.fallbackPwq(from).add(work)
    }
    for (const wq of this.workqueues) {
      const pwq = wq.pwqs.get(pool)
      if (pwq === undefined) continue
      wq.pwqs.delete(pool)
      for (const work of pwq.inactive.take(() => true)) this.fallbackPwq(pwq).add(work)
    }
  }

  /** @internal */
  lazyPool(pwq: Pwq, cpu: number): Pwq | undefined {
    const wq = pwq.wq as Workqueue
    const pool = wq.dedicated[cpu]
    if (pool === undefined) return undefined
    if (pool.workers.size === 0 && !pool.createWorker()) return undefined
    return wq.pwqOf(pool)
  }

  /** @internal */
  fallbackPwq(pwq: Pwq): Pwq {
    const wq = pwq.wq as Workqueue
    return wq.pwqOf(this.unboundPool(wq.strategy ?? 'plain', wq.highpri, wq.cpumask))
  }
}

// io-ts strips unknown keys; a misspelt option or flag is refused instead.
const unknownKey = (input: unknown, known: ReadonlyArray<string>, field: string): CgtxError | undefined => {
  if (typeof input !== 'object' || input === null) return undefined
  const extra = Object.keys(input).find((key) => !known.includes(key))
  return extra === undefined ? undefined : badArgument(`${field}.${extra}`, (input as Record<string, unknown>)[extra], `one of ${known.join(', ')}`)
}

const pickCpuHierarchy = (host: Host, name: string | undefined): Hierarchy | undefined => {
  if (name !== undefined) return host.hierarchy(name)
  const cpu = host.subsystemId('cpu')
  const bound = cpu >= 0 ? host.hierarchyOf(cpu) : undefined
  return bound ?? host.hierarchies.find((hierarchy) => hierarchy.version === 'v2') ?? host.hierarchies[0]
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

/**
 * flush_work: waits until the last queued instance of `work` has finished.
 * Resolves `Right(true)` if it waited, `Right(false)` if the work was idle;
 * a non-work is a `BadArgument`.
 */
export const flushWork = (work: unknown): Promise<E.Either<CgtxError, boolean>> => {
  if (!(work instanceof Work)) return Promise.resolve(notAWork(work))
  // While a cancel holds PENDING there is no pending instance to wait for.
  if (work.pending && work.canceling === undefined) return new Promise((resolve) => (work.pendingWaiters ??= []).push(() => resolve(RIGHT_TRUE)))
  if (work.runningOn === undefined) return Promise.resolve(RIGHT_FALSE)
  return new Promise((resolve) => (work.runWaiters ??= []).push(() => resolve(RIGHT_TRUE)))
}

/**
 * cancel_work_sync: takes a pending instance back (from its timer, worklist
 * or overflow list; its cgroup reference is released) and waits for a
 * running one to finish. Queue attempts made meanwhile return `false`. On
 * return the work is neither pending nor running. Resolves `Right(true)` if
 * it was pending; a non-work is a `BadArgument`.
 */
export const cancelWorkSync = (work: unknown): Promise<E.Either<CgtxError, boolean>> => {
  if (!(work instanceof Work)) return Promise.resolve(notAWork(work))
  if (work.canceling !== undefined) return work.canceling.then(() => RIGHT_FALSE)
  const wasPending = work.pending
  const system = systemOf(work)
  if (wasPending) system?.steal(work)
  work.pending = true
  const running =
    work.runningOn === undefined ? Promise.resolve() : new Promise<void>((resolve) => (work.runWaiters ??= []).push(resolve))
  const canceling = running.then(() => {
    work.pending = false
    work.canceling = undefined
    return wasPending
  })
  work.canceling = canceling
  return canceling.then((stolen) => (stolen ? RIGHT_TRUE : RIGHT_FALSE))
}

const systemOf = (work: Work): WorkqueueSystem | undefined => {
  if (work.place === Place.timer) return (work.holder as Workqueue).system
  const pwq = work.pwq as Pwq | undefined
  return pwq === undefined ? undefined : (pwq.wq as Workqueue).system
}
