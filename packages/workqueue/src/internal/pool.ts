/**
 * Worker pools, their workers and the pool_workqueue links, following the
 * kernel's CMWQ (see workqueue-anchors §1):
 *
 * - a pool has one FIFO worklist, idle workers on a LIFO list and busy ones
 *   running works; per-CPU pools are concurrency-managed (a new work starts
 *   only when no worker of the pool is runnable), unbound pools are not;
 * - a woken worker that finds no idle worker left becomes the pool's
 *   manager and creates one before it processes anything (the "at least one
 *   idle worker" invariant); a failed creation waits CREATE_COOLDOWN and
 *   retries, and arms the mayday timer that hands the pool's works of
 *   WQ_MEM_RECLAIM workqueues to their rescuers;
 * - surplus idle workers are destroyed after the idle timeout;
 * - a pool_workqueue counts the active works of one workqueue in one pool
 *   against max_active and parks the rest on its inactive list.
 *
 * Workers are kernel-thread tasks of the host. A worker of a cgroup-aware
 * pool moves into a work's cgroup just before running it and back to the
 * root only on its way to idle.
 */
import * as E from 'fp-ts/lib/Either.js'
import type { AttachReport, Cgroup, CgtxError, Clock, Host, Task, Timer } from '@cgtx/core'
import type { Strategy } from '../codecs.ts'
import type { Controllers } from '../system.ts'
import { setRunningSlot, storage, type WorkerSlot } from '../context.ts'
import { Place, type Work } from '../work.ts'
import { Deque } from './deque.ts'

// Module-local copies of the places the hot path stores: an imported
// binding is read through a cell and checked on every use, a local const is
// folded into the code.
const ON_WORKLIST = Place.worklist
const ON_INACTIVE = Place.inactive

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

/** The workqueue side of a pwq. */
export interface PwqOwner {
  readonly name: string
  readonly maxActive: number
  readonly strategy: Strategy | undefined
  readonly cpuIntensive: boolean
  readonly rescuer: Pool | undefined
  /** Unbound workqueues count max_active workqueue-wide (v6.9), bound ones per pwq. */
  readonly unbound: boolean
  /** Unbound: active works over all pwqs. */
  activeTotal: number
  /** Most works ever active at once, counted as max_active counts them. */
  peakActive: number
  /** Unbound: pwqs with works on their overflow list, served round-robin. */
  readonly waiting: Array<Pwq>
  /** An instance of flush colour `color` finished or was stolen. */
  instanceDone(color: number): void
}

/** Kinds of pools. */
export type PoolKind = 'percpu' | 'unbound' | 'cgroup' | 'dedicated' | 'rescuer'

/** pool_workqueue: one workqueue's share of one pool. */
export class Pwq {
  nrActive = 0
  readonly inactive = new Deque<Work>()

  constructor(
    readonly wq: PwqOwner,
    readonly pool: Pool,
  ) {}

  /**
   * Queues a pending instance: active if under max_active, else inactive.
   * (Never a dying cgroup pool's pwq: the workqueue picks the fallback pool
   * for those.)
   */
  add(work: Work): void {
    // Mostly the pwq it had: a store of a young pwq into an old work costs a write barrier.
    if (work.pwq !== this) work.pwq = this
    const wq = this.wq
    // `=== true` for the flags here: see Pool.concurrencyManaged.
    if (wq.unbound === true ? wq.activeTotal < wq.maxActive : this.nrActive < wq.maxActive) {
      this.activate(work)
    } else {
      work.waitIn(ON_INACTIVE)
      this.inactive.push(work)
      if (wq.unbound === true) this.waitForRoom()
    }
  }

  // Unbound: this pwq waits its turn for room under the workqueue-wide max_active.
  private waitForRoom(): void {
    const waiting = this.wq.waiting
    if (!waiting.includes(this)) waiting.push(this)
  }

  private activate(work: Work): void {
    const wq = this.wq
    // max_active counts per pwq for a bound workqueue, workqueue-wide for an unbound one.
    let active = ++this.nrActive
    if (wq.unbound === true) active = ++wq.activeTotal
    if (active > wq.peakActive) wq.peakActive = active
    this.enterWorklist(work)
  }

  private enterWorklist(work: Work): void {
    work.waitIn(ON_WORKLIST)
    this.pool.worklist.push(work)
    this.pool.kick()
  }

  /**
   * An instance of this pwq finished or was stolen: an active one frees its
   * max_active slot, its flush colour counts down, and its cgroup
   * references are released.
   */
  retire(color: number, target: ReadonlyArray<Cgroup> | undefined, active: boolean): void {
    // `=== true`: a strict compare, not a truth test through type checks (see Pool.concurrencyManaged).
    if (active === true) this.deactivate()
    this.wq.instanceDone(color)
    if (target !== undefined) this.pool.system.release(target)
  }

  /**
   * An active instance finished or was stolen: activate the first inactive
   * one — of this pwq for a bound workqueue, of the next waiting pwq in turn
   * for an unbound one.
   */
  deactivate(): void {
    // The common case inline, the rest out of line: deactivate is inlined
    // into the worker loop, whose inlining budget (V8's, in bytecode) it
    // shares with the rest of a run.
    if (this.wq.unbound !== true && this.inactive.length === 0) this.nrActive--
    else if (this.wq.unbound === true) this.deactivateUnbound()
    else this.activateInactive()
  }

  // Bound: the freed slot passes straight to the first inactive work, the count stays.
  private activateInactive(): void {
    this.enterWorklist(this.inactive.shift()!)
  }

  private deactivateUnbound(): void {
    const wq = this.wq
    this.nrActive--
    wq.activeTotal--
    while (wq.activeTotal < wq.maxActive && wq.waiting.length > 0) {
      const pwq = wq.waiting.shift()!
      const next = pwq.inactive.shift()
      if (next === undefined) continue
      pwq.activate(next)
      if (pwq.inactive.length > 0) wq.waiting.push(pwq)
    }
  }
}

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
    if (this.worklist.length === 0) return
    if (this.concurrencyManaged === true && this.nrRunning > 0) return
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
        return idle > 0 && this.nrBusy === 0 && this.worklist.length === 0
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
    if (this.workers.size === 0 && this.worklist.length === 0 && this.kind === 'cgroup') this.system.poolEmpty(this)
  }

  /**
   * manage_workers / maybe_create_worker: create workers until one is idle,
   * cooling down after each failure; the mayday timer runs meanwhile.
   */
  async manage(worker: Worker): Promise<void> {
    this.manager = worker
    try {
      while (this.idle.length === 0 && this.worklist.length > 0 && !this.dying) {
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
    const stalled = this.worklist.length > 0 && this.idle.length === 0
    if (!stalled) return
    const rescued = this.worklist.take((work) => (work.pwq as Pwq).wq.rescuer !== undefined)
    for (const work of rescued) {
      const rescuer = (work.pwq as Pwq).wq.rescuer!
      work.waitIn(Place.mayday)
      work.holder = rescuer
      rescuer.worklist.push(work)
      rescuer.kick()
    }
    if (this.worklist.length > 0) this.maydayTimer = this.system.clock.setTimer(this.system.maydayIntervalMs, () => this.mayday())
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

// Workers move with mode 'process': a kernel thread is the only thread of its
// process, and cgroup_attach_kthread moves it as a whole task, so the v2 rule
// against single threads crossing thread domains does not apply. They use
// the core's attachTask, which takes the Task and Cgroup objects they hold
// instead of decoding a request.

const exitTask = async (host: Host, task: Task): Promise<void> => {
  const exited = await host.exit(task.tid)()
  if (E.isRight(exited)) host.reap(task.tid)
}

// Whether moving into `target` is a no-op.
// (Loops, not every/some with a closure: both run on every migration.)
const isIn = (task: Task, target: ReadonlyArray<Cgroup>): boolean => {
  for (const cgroup of target) if (task.cssSet.cgroup(cgroup.hierarchy.index) !== cgroup) return false
  return true
}

// Whether a cgroup of `target` is gone or going: its works run in the root.
const isLeaving = (system: PoolHost, target: ReadonlyArray<Cgroup>): boolean => {
  for (const cgroup of target) if (cgroup.dead || system.isRemoving(cgroup)) return true
  return false
}

/** A kernel-thread worker. */
export class Worker {
  /** Clock time it last became idle. */
  idleSince = 0
  dying = false
  /** Runnable (counts in the pool's nrRunning). */
  running = false
  /** Woken and not yet back on the idle list. */
  private busy = false
  /** Its work returned a promise that has not settled (the worker sleeps)... */
  private awaiting = false
  /** ...unless it burns CPU meanwhile. */
  private burning = 0
  /** Works of the same item handed over by another worker (non-reentrancy). */
  readonly scheduled: Array<Work> = []
  readonly slot: WorkerSlot
  private wakeup: (() => void) | undefined = undefined
  private cpuIntensive = false
  // The running instance's pwq and flush colour (see processOne).
  private runningPwq: Pwq | undefined = undefined
  private runningColor = 0

  constructor(
    readonly pool: Pool,
    readonly task: Task,
  ) {
    this.slot = {
      host: pool.system.host,
      task,
      work: undefined,
      owner: undefined,
      target: undefined,
      cpu: pool.cpu,
      cpus: pool.cpus,
      setRunning: (running) => {
        this.burning += running ? 1 : -1
        this.updateRunning()
      },
      burn: (ms) => pool.system.burn(this.slot, ms),
      controllers: pool.system.controllers,
    }
  }

  /** Starts the thread's loop inside its context slot. */
  start(): void {
    void storage.run(this.slot, () => this.loop())
  }

  /** Woken, not yet running (still on the idle list). */
  get waking(): boolean {
    return this.wakeup === undefined && !this.busy && !this.dying
  }

  /** Wakes an idle worker; a no-op for one already woken. */
  wake(): void {
    const wakeup = this.wakeup
    this.wakeup = undefined
    wakeup?.()
  }

  /** Makes an idle worker exit. */
  destroy(): void {
    this.dying = true
    this.pool.forget(this)
    const wakeup = this.wakeup
    this.wakeup = undefined
    wakeup?.()
  }

  // Concurrency management: busy, not in a CPU-intensive work, and not
  // sleeping in an async work unless it burns CPU there.
  private updateRunning(): void {
    this.setRunning(this.busy && !this.cpuIntensive && (this.burning > 0 || !this.awaiting))
  }

  private setRunning(running: boolean): void {
    if (running === this.running) return
    this.running = running
    this.pool.nrRunning += running ? 1 : -1
    if (!running && this.pool.concurrencyManaged && this.pool.nrRunning === 0) this.pool.kick()
  }

  private async loop(): Promise<void> {
    let woken = false
    for (;;) {
      if (this.dying) break
      const pool = this.pool
      if (!woken) {
        await new Promise<void>((resolve) => (this.wakeup = resolve))
        if (this.dying) break
        pool.leaveIdle(this)
        this.busy = true
        this.updateRunning()
      }
      woken = false
      // The at-least-one-idle-worker invariant, before processing anything.
      if (pool.managed && pool.idle.length === 0 && pool.manager === undefined) await pool.manage(this)
      const busy = this.processWorks()
      if (busy !== undefined) await busy
      const leaving = this.leaveCgroups()
      // Synchronous when uncontended, so the worker is idle again before anyone looks.
      const left = typeof leaving === 'object' ? await leaving : leaving
      if (left === false) {
        // Could not return to the root: leave the cgroup by exiting instead.
        this.dying = true
        pool.forget(this)
        break
      }
      if (this.dying) break
      // Work that arrived while it returned to the root: stay busy.
      if (this.keepWorking()) {
        woken = true
        continue
      }
      this.busy = false
      this.updateRunning()
      pool.enterIdle(this)
    }
    this.busy = false
    this.updateRunning()
    await exitTask(this.pool.system.host, this.task)
    this.pool.system.workerLeft()
  }

  // The next work for this worker: its scheduled list first, then the pool's
  // worklist (passing on works another worker already runs).
  private take(): Work | undefined {
    if (this.scheduled.length > 0) return this.scheduled.shift()
    const worklist = this.pool.worklist
    for (;;) {
      const work = worklist.shift()
      if (work === undefined) return undefined
      const runner = work.runningOn as Worker | undefined
      if (runner === undefined || runner === this) return work
      this.passOn(work, runner)
    }
  }

  // A work taken from the worklist still runs on `runner` (requeued while it ran).
  private passOn(work: Work, runner: Worker): void {
    if (runner.pool === this.pool) {
      // find_worker_executing_work: the worker running it runs it next.
      work.waitIn(Place.scheduled)
      work.holder = runner
      runner.scheduled.push(work)
      return
    }
    // Running in another pool (another cgroup's, under `pools`): it waits
    // here until that run ends, so it runs once at a time and still in its
    // own pool.
    const pool = this.pool
    work.waitIn(Place.deferred)
    ;(work.runWaiters ??= []).push(() => {
      if (work.place !== Place.deferred) return
      work.waitIn(Place.worklist)
      pool.worklist.push(work)
      pool.kick()
    })
  }

  // Runs works until none is left for it (or, concurrency-managed, until
  // another worker is runnable). Synchronous while works are. The worker's
  // slot is the running one (queueing from a work picks its CPU, currentWork
  // skips the AsyncLocalStorage lookup) for the whole synchronous stretch,
  // not set and restored around each work.
  private processWorks(): Promise<void> | undefined {
    const outer = setRunningSlot(this.slot)
    try {
      for (;;) {
        const work = this.take()
        if (work === undefined) return undefined
        const ran = work.handoverTo === undefined ? this.processOne(work) : this.handOver(work)
        if (ran !== undefined) return ran.then(() => this.continueAfter())
        if (!this.keepWorking()) return undefined
      }
    } finally {
      setRunningSlot(outer)
    }
  }

  private continueAfter(): Promise<void> | undefined {
    return this.keepWorking() ? this.processWorks() : undefined
  }

  // keep_working: per-CPU workers stop when another worker is runnable.
  private keepWorking(): boolean {
    if (this.scheduled.length > 0) return true
    if (this.pool.worklist.length === 0 || this.dying) return false
    return this.pool.concurrencyManaged !== true || this.pool.nrRunning <= 1
  }

  // Lazy workqueues: the core thread passes a work on to the thread of the
  // CPU it was queued for, creating that thread; if creation fails, it runs
  // the work itself.
  private handOver(work: Work): Promise<void> | undefined {
    const cpu = work.handoverTo!
    work.handoverTo = undefined
    const pwq = work.pwq as Pwq
    const next = this.pool.system.lazyPool(pwq, cpu)
    if (next === undefined) return this.processOne(work)
    pwq.deactivate()
    next.add(work)
    return undefined
  }

  /**
   * process_one_work. Returns a promise only if the work (or a migration)
   * has to wait. It runs once per work, so it stores only what changes: the
   * work's PENDING bit and place are cleared in one store (its data word),
   * and the rare cases cost one test (see Work.startRunning).
   * What the instance was queued with (pwq, flush colour, cgroups) and who
   * waits for it (its flushWork callers) move to the worker, its slot and
   * the run's waiters until it finishes: the work may be queued again
   * meanwhile, and a worker runs one work at a time.
   */
  private processOne(work: Work): Promise<void> | undefined {
    const pwq = work.pwq as Pwq
    const wq = pwq.wq
    const slot = this.slot
    const target = work.cgroups
    if (this.runningPwq !== pwq) this.runningPwq = pwq
    this.runningColor = work.color
    work.startRunning(this)
    slot.work = work
    if (slot.owner !== wq) slot.owner = wq
    // An unbound pool starts every work at once: wake another worker for the rest.
    const pool = this.pool
    if (pool.concurrencyManaged !== true && pool.worklist.length > 0) pool.kick()
    if (target !== undefined || wq.cpuIntensive) return this.processSpecial(work, pwq, target)
    return this.call(work)
  }

  // process_one_work for a cgroup work or a CPU-intensive workqueue.
  private processSpecial(work: Work, pwq: Pwq, target: ReadonlyArray<Cgroup> | undefined): Promise<void> | undefined {
    if (pwq.wq.cpuIntensive) {
      this.cpuIntensive = true
      this.updateRunning()
    }
    if (target !== undefined) {
      work.cgroups = undefined
      this.slot.target = target
      if (this.movesFor(pwq)) {
        const moved = this.moveInto(target)
        if (moved !== undefined) return moved.then(() => this.callResumed(work))
      }
    }
    return this.call(work)
  }

  // Migrating strategies: `migrate` always; a rescuer also for `pools`,
  // since it is not a member of the cgroup's pool.
  private movesFor(pwq: Pwq): boolean {
    const strategy = pwq.wq.strategy
    return strategy === 'migrate' || (strategy === 'pools' && this.pool.kind === 'rescuer')
  }

  // A work that starts after a wait runs in a continuation, outside
  // processWorks: its slot is marked running here.
  private callResumed(work: Work): Promise<void> | undefined {
    const outer = setRunningSlot(this.slot)
    try {
      return this.call(work)
    } finally {
      setRunningSlot(outer)
    }
  }

  private call(work: Work): Promise<void> | undefined {
    let result: unknown
    try {
      result = work.fn(work)
    } catch (error) {
      this.failed(work, error)
      return undefined
    }
    if (typeof result === 'object' && result !== null && typeof (result as PromiseLike<void>).then === 'function')
      return this.sleepOn(result as PromiseLike<void>, work)
    this.finish(work)
    return undefined
  }

  // The work returned a promise: it sleeps, so for concurrency management
  // this worker is not runnable until it settles.
  private sleepOn(result: PromiseLike<void>, work: Work): Promise<void> {
    this.awaiting = true
    this.updateRunning()
    const woke = (): void => {
      this.awaiting = false
      this.updateRunning()
    }
    return Promise.resolve(result).then(
      () => {
        woke()
        this.finish(work)
      },
      (error: unknown) => {
        woke()
        this.failed(work, error)
      },
    )
  }

  // A run that threw or rejected: recorded, then finished like any other.
  private failed(work: Work, error: unknown): void {
    this.pool.system.recordFailure(work, this.runningPwq!, this, error)
    this.finish(work)
  }

  private finish(work: Work): void {
    if (this.cpuIntensive) {
      this.cpuIntensive = false
      this.updateRunning()
    }
    work.finishRunning()
    const slot = this.slot
    const target = slot.target
    slot.work = undefined
    if (target !== undefined) slot.target = undefined
    this.runningPwq!.retire(this.runningColor, target, true)
  }

  /**
   * Moves the worker into `target` through the attach transaction, unless
   * it is there already. A move that fails falls back to the root; a move
   * that would wait (contended locks) waits.
   */
  private moveInto(target: ReadonlyArray<Cgroup>): Promise<void> | undefined {
    const task = this.task
    const system = this.pool.system
    if (isLeaving(system, target)) return this.fallBack(target)
    if (isIn(task, target)) return undefined
    const moved = system.host.attachTaskSync(task, target, 'process')
    if (E.isRight(moved)) {
      system.workerLeft()
      return undefined
    }
    if (!wouldWait(moved.left)) return this.fallBack(target)
    return system.host
      .attachTask(task, target, 'process')()
      .then((waited: E.Either<CgtxError, AttachReport>) => {
        if (E.isRight(waited)) system.workerLeft()
        else return this.fallBack(target)
        return undefined
      })
  }

  private fallBack(target: ReadonlyArray<Cgroup>): Promise<void> | undefined {
    const roots = target.map((cgroup) => cgroup.hierarchy.root)
    const back = this.moveToRoots(roots)
    return typeof back === 'boolean' ? undefined : back.then(() => undefined)
  }

  /** On the way to idle: back to the root of every hierarchy it left. */
  private leaveCgroups(): Promise<boolean> | boolean | undefined {
    if (this.pool.kind === 'cgroup') return undefined
    const cgroups = this.task.cssSet.cgroups
    let roots: Array<Cgroup> | undefined
    for (const cgroup of cgroups) if (!cgroup.isRoot) (roots ??= []).push(cgroup.hierarchy.root)
    return roots === undefined ? undefined : this.moveToRoots(roots)
  }

  // The move to the root: synchronous if uncontended, else it waits for the
  // locks. Only a controller refusing the root (a plugin bug) makes it fail.
  private moveToRoots(roots: ReadonlyArray<Cgroup>): boolean | Promise<boolean> {
    const system = this.pool.system
    const moved = system.host.attachTaskSync(this.task, roots, 'process')
    if (E.isRight(moved)) {
      system.workerLeft()
      return true
    }
    return system.host
      .attachTask(this.task, roots, 'process')()
      .then((waited: E.Either<CgtxError, AttachReport>) => {
        system.workerLeft()
        return E.isRight(waited)
      })
  }
}

// attachTaskSync refuses with EAGAIN where the transaction would have waited, and
// with a 'slept' fault where a controller's prepare returned a promise.
const wouldWait = (error: CgtxError): boolean =>
  error._tag === 'SystemError' && (error.errno === 'EAGAIN' || error.fault?.kind === 'slept')
