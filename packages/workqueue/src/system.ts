/**
 * The workqueue system of one {@link Host}: what its workqueues share. It
 * creates workqueues; owns the worker pools (per-CPU, unbound, per cgroup
 * combination under `pools`, lazy threads) and the workers' tasks; holds the
 * references queued cgroup works keep on their cgroups, and completes a
 * cgroup's removal once only departing workers held it; takes stolen
 * instances back for cancels and destroys; and accounts the CPU time works
 * burn through its scheduler. The designs: the kernel's CMWQ
 * (workqueue-anchors §1), the cgroup-aware workqueues of the 2019 and 2016
 * RFCs (§2, §3) and the lazy workqueues of 2009 (§4).
 *
 * Every call decodes its input; a refusal is a `BadArgument` or a
 * `SystemError` returned synchronously and changes nothing.
 *
 * @module system
 */
import * as E from 'fp-ts/lib/Either.js'
import type * as t from 'io-ts'
import { badArgument, Cgroup, decode, systemError, type CgroupRef, type CgtxError, type Clock, type Hierarchy, type Host, type Task } from '@cgtx/core'
import { CgroupTarget, SystemOptions, WorkqueueOptions } from './codecs.ts'
import { chargeCgroupOf, type WorkerSlot } from './context.ts'
import { CpuScheduler, unlimitedCpu, type CpuPolicy, type CpuStat } from './cpu.ts'
import { Pool, type PoolHost } from './internal/pool.ts'
import type { Pwq } from './internal/pwq.ts'
import type { Worker } from './internal/worker.ts'
import { Place, type Work, type WorkFailure } from './work.ts'
import { Workqueue } from './workqueue.ts'
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
    if (active) pwq.retire(work.color)
    else pwq.wq.instanceDone(work.color)
    if (target !== undefined) this.release(target)
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
