/**
 * Worker pools, following the kernel's CMWQ (see workqueue-anchors §1):
 *
 * - a pool has one FIFO worklist, idle workers on a LIFO list and busy ones
 *   running works; per-CPU pools are concurrency-managed (a new work starts
 *   only when no worker of the pool is runnable), unbound pools are not;
 * - a woken worker that finds no idle worker left becomes the pool's
 *   manager and creates one before it processes anything (the "at least one
 *   idle worker" invariant); a failed creation waits CREATE_COOLDOWN and
 *   retries, and arms the mayday timer that hands the pool's works of
 *   WQ_MEM_RECLAIM workqueues to their rescuers;
 * - surplus idle workers are destroyed after the idle timeout.
 *
 * The workers themselves are in worker.ts, the pool_workqueue links that
 * count each workqueue's share against max_active in pwq.ts.
 */
import * as E from 'fp-ts/lib/Either.js'
import type { Cgroup, CgtxError, Clock, Host, Task, Timer } from '@cgtx/core'
import type { Controllers } from '../system.ts'
import type { WorkerSlot } from '../context.ts'
import { Place, type Work } from '../work.ts'
import { Deque } from './deque.ts'
import type { Pwq } from './pwq.ts'
import { Worker, exitTask } from './worker.ts'

/** What pools need from the workqueue system that owns them. */
export interface PoolHost {
  readonly host: Host
  readonly clock: Clock
  readonly idleTimeoutMs: number
  readonly lazyIdleTimeoutMs: number
  readonly createCooldownMs: number
  readonly maydayInitialMs: number
  readonly maydayIntervalMs: number
  readonly controllers: Controllers
  spawnWorker(comm: string, perCpu: boolean): E.Either<CgtxError, Task>
  burn(slot: WorkerSlot, ms: number): Promise<void>
  /** Releases the queue-time references on a finished instance's cgroups. */
  release(target: ReadonlyArray<Cgroup>): void
  recordFailure(work: Work, pwq: Pwq, worker: Worker, error: unknown): void
  /** A worker changed cgroups or exited: removals waiting for it may complete. */
  workerLeft(): void
  /** The cgroup is being removed: works for it run in the root instead. */
  isRemoving(cgroup: Cgroup): boolean
  /** The pool lost its last worker and has no work: forget it. */
  poolEmpty(pool: Pool): void
  /** The pool's cgroups are gone: send its works to the root pool. */
  orphaned(pool: Pool): void
  /** A lazy workqueue's core worker asks for the pool of `cpu`, creating its worker. */
  lazyPool(pwq: Pwq, cpu: number): Pwq | undefined
  /** Pools of a dead cgroup combination send their works here. */
  fallbackPwq(pwq: Pwq): Pwq
}

/** Kinds of pools. */
export type PoolKind = 'percpu' | 'unbound' | 'cgroup' | 'dedicated' | 'rescuer'

let nextPoolId = 0

/** A worker pool. */
export class Pool {
  readonly id = nextPoolId++
  readonly worklist = new Deque<Work>()
  readonly workers = new Set<Worker>()
  /** Idle workers, most recently idle last. */
  readonly idle: Array<Worker> = []
  /** Workers runnable (busy and not sleeping), for concurrency management. */
  nrRunning = 0
  manager: Worker | undefined = undefined
  /** Worker creations that failed. */
  creationFailures = 0
  dying = false
  private idleTimer: Timer | undefined = undefined
  private maydayTimer: Timer | undefined = undefined
  private nextWorkerId = 0
  /**
   * Per-CPU pools manage concurrency; unbound ones start every work at once.
   * Hot paths test it with `=== true`: V8 tests a boolean field's truth
   * through a cascade of type checks (≈ 12 instructions for `true`), a
   * strict compare in one.
   */
  readonly concurrencyManaged: boolean
  /** Pools that keep an idle worker in reserve and create workers on demand. */
  readonly managed: boolean
  readonly maxWorkers: number

  constructor(
    readonly system: PoolHost,
    readonly kind: PoolKind,
    /** Per-CPU and dedicated pools: their CPU. */
    readonly cpu: number | undefined,
    /** Cgroup pools: the cgroup combination their workers live in. */
    readonly cgroups: ReadonlyArray<Cgroup> | undefined,
    readonly options: {
      readonly highpri?: boolean
      /** Dedicated pools: a lazy workqueue's on-demand thread (exits when idle). */
      readonly lazy?: boolean
      readonly name?: string
      /** Unbound pools: the workqueue attribute cpumask. */
      readonly cpumask?: ReadonlyArray<number>
    } = {},
  ) {
    this.concurrencyManaged = kind === 'percpu'
    this.managed = kind === 'percpu' || kind === 'unbound' || kind === 'cgroup'
    this.maxWorkers = kind === 'dedicated' || kind === 'rescuer' ? 1 : Number.POSITIVE_INFINITY
  }


  /** CPUs the pool's workers may run on. */
  get cpus(): ReadonlyArray<number> | undefined {
    return this.cpu === undefined ? this.options.cpumask : [this.cpu]
  }

  get nrIdle(): number {
    return this.idle.length
  }

  get nrBusy(): number {
    return this.workers.size - this.idle.length
  }

  /**
   * kick_pool: wakes the most recently idle worker if the worklist needs one.
   * The worker stays on the idle list until it runs (worker_leave_idle), so
   * a burst of queueing wakes one worker, not one per work.
   */
  kick(): void {
    // Only the test inline: kick is inlined into queueing and into the
    // worker loop, which share V8's inlining budget with the rest of a run.
    if (!this.worklist.empty && (this.concurrencyManaged !== true || this.nrRunning === 0)) this.wakeIdle()
  }

  private wakeIdle(): void {
    const worker = this.idle[this.idle.length - 1]
    if (worker !== undefined) worker.wake()
    else this.regrow()
  }

  // Pools that shrink to nothing (cgroup pools, lazy threads) grow again on demand.
  private regrow(): void {
    if (this.workers.size > 0 || this.manager !== undefined) return
    if (this.createWorker()) this.idle[this.idle.length - 1]!.wake()
    else this.startCreating()
  }

  /** A woken worker runs: off the idle list. */
  leaveIdle(worker: Worker): void {
    const last = this.idle.length - 1
    if (this.idle[last] === worker) this.idle.pop()
    else {
      const at = this.idle.indexOf(worker)
      if (at >= 0) this.idle.splice(at, 1)
    }
  }

  /**
   * create_worker: a kernel thread, moved into the pool's cgroups for a
   * cgroup pool. New workers start idle. False if creation failed.
   */
  createWorker(): boolean {
    if (this.workers.size >= this.maxWorkers || this.dying) return false
    const comm = this.workerName()
    const spawned = this.system.spawnWorker(comm, this.kind === 'percpu' || this.kind === 'dedicated')
    if (E.isLeft(spawned)) {
      this.creationFailures++
      return false
    }
    const task = spawned.right
    if (this.cgroups !== undefined) {
      const moved = this.system.host.attachTaskSync(task, this.cgroups, 'process')
      if (E.isLeft(moved)) {
        this.creationFailures++
        void exitTask(this.system.host, task)
        if (this.cgroups.some((cgroup) => cgroup.dead || this.system.isRemoving(cgroup))) this.orphan()
        return false
      }
    }
    const worker = new Worker(this, task)
    this.workers.add(worker)
    this.enterIdle(worker)
    worker.start()
    return true
  }

  private workerName(): string {
    const n = this.nextWorkerId++
    switch (this.kind) {
      case 'percpu':
        return `kworker/${this.cpu}:${n}${this.options.highpri === true ? 'H' : ''}`
      case 'unbound':
        return `kworker/u:${n}`
      case 'cgroup':
        return `kworker/cg${this.id}:${n}`
      case 'dedicated':
        return `${this.options.name ?? 'wq'}/${this.cpu}`
      case 'rescuer':
        return this.options.name ?? 'rescuer'
    }
  }

  /** A worker finished its busy period. */
  enterIdle(worker: Worker): void {
    if (this.dying) {
      worker.destroy()
      return
    }
    worker.idleSince = this.system.clock.now()
    this.idle.push(worker)
    if (this.tooManyWorkers()) this.armIdleTimer()
  }

  // too_many_workers, and the pool-specific rules for shrinking to nothing.
  private tooManyWorkers(): boolean {
    const idle = this.idle.length
    switch (this.kind) {
      case 'percpu':
      case 'unbound':
        return idle > 2 && (idle - 2) * 4 >= this.nrBusy
      case 'cgroup':
        return idle > 0 && this.nrBusy === 0 && this.worklist.empty
      case 'dedicated':
        return this.options.lazy === true && idle > 0
      case 'rescuer':
        return false
    }
  }

  private get idleTimeout(): number {
    return this.kind === 'dedicated' ? this.system.lazyIdleTimeoutMs : this.system.idleTimeoutMs
  }

  private armIdleTimer(): void {
    if (this.idleTimer !== undefined) return
    const oldest = this.idle[0]
    if (oldest === undefined) return
    const due = Math.max(0, oldest.idleSince + this.idleTimeout - this.system.clock.now())
    this.idleTimer = this.system.clock.setTimer(due, () => {
      this.idleTimer = undefined
      this.reap(false)
    })
  }

  // idle_worker_timeout: destroy the oldest idle workers while there are too many.
  private reap(now: boolean): void {
    while (this.tooManyWorkers()) {
      const oldest = this.idle[0]!
      if (oldest.waking) return
      if (!now && this.system.clock.now() - oldest.idleSince < this.idleTimeout) {
        this.armIdleTimer()
        return
      }
      this.idle.shift()
      oldest.destroy()
    }
  }

  /** A worker left the pool for good. */
  forget(worker: Worker): void {
    this.workers.delete(worker)
    const at = this.idle.indexOf(worker)
    if (at >= 0) this.idle.splice(at, 1)
    if (this.workers.size === 0 && this.worklist.empty && this.kind === 'cgroup') this.system.poolEmpty(this)
  }

  /**
   * manage_workers / maybe_create_worker: create workers until one is idle,
   * cooling down after each failure; the mayday timer runs meanwhile.
   */
  async manage(worker: Worker): Promise<void> {
    this.manager = worker
    try {
      while (this.idle.length === 0 && !this.worklist.empty && !this.dying) {
        if (this.createWorker()) break
        this.armMayday()
        await this.system.clock.sleep(this.system.createCooldownMs)
      }
    } finally {
      this.manager = undefined
    }
  }

  // A pool with no worker at all cannot have a manager; retry creation on the clock.
  private startCreating(): void {
    if (this.manager !== undefined || this.dying) return
    const placeholder = {} as Worker
    this.manager = placeholder
    this.armMayday()
    this.system.clock.setTimer(this.system.createCooldownMs, () => {
      if (this.manager === placeholder) this.manager = undefined
      this.kick()
    })
  }

  private armMayday(): void {
    if (this.maydayTimer !== undefined) return
    this.maydayTimer = this.system.clock.setTimer(this.system.maydayInitialMs, () => this.mayday())
  }

  // pool_mayday_timeout / send_mayday: hand works of rescuer-equipped
  // workqueues to their rescuers while the pool still needs a worker.
  private mayday(): void {
    this.maydayTimer = undefined
    const stalled = !this.worklist.empty && this.idle.length === 0
    if (!stalled) return
    const rescued = this.worklist.take((work) => (work.pwq as Pwq).wq.rescuer !== undefined)
    for (const work of rescued) {
      const rescuer = (work.pwq as Pwq).wq.rescuer!
      work.waitIn(Place.mayday)
      work.holder = rescuer
      rescuer.worklist.push(work)
      rescuer.kick()
    }
    if (!this.worklist.empty) this.maydayTimer = this.system.clock.setTimer(this.system.maydayIntervalMs, () => this.mayday())
  }

  /** The pool's cgroups are gone: its works go to the fallback (root) pool and its workers leave. */
  orphan(): void {
    if (this.dying) return
    this.dying = true
    this.system.orphaned(this)
    for (const worker of [...this.idle]) worker.destroy()
    if (this.workers.size === 0) this.system.poolEmpty(this)
  }
}
