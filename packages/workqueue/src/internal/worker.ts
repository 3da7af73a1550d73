/**
 * A worker: a kernel-thread task of the host that takes works from its
 * pool's worklist and runs them (process_one_work), sleeping in the
 * concurrency-management sense while an asynchronous work awaits. A worker
 * of a cgroup-aware pool moves into a work's cgroup just before running it
 * and back to the root only on its way to idle (see workqueue-anchors §2.3).
 */
import * as E from 'fp-ts/lib/Either.js'
import type { AttachReport, Cgroup, CgtxError, Host, Task } from '@cgtx/core'
import { setRunningSlot, storage, type WorkerSlot } from '../context.ts'
import { Place, type Work } from '../work.ts'
import type { Pool, PoolHost } from './pool.ts'
import type { Pwq } from './pwq.ts'

/** A worker's task exits and is reaped (a worker leaving, or one its pool could not place). */
export const exitTask = async (host: Host, task: Task): Promise<void> => {
  const exited = await host.exit(task.tid)()
  if (E.isRight(exited)) host.reap(task.tid)
}

// Workers move with mode 'process': a kernel thread is the only thread of its
// process, and cgroup_attach_kthread moves it as a whole task, so the v2 rule
// against single threads crossing thread domains does not apply. They use
// the core's attachTask, which takes the Task and Cgroup objects they hold
// instead of decoding a request.

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
  // The running instance's pwq and flush colour (see begin).
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

  // `work`, taken from the worklist, still runs on a worker (it was queued
  // again while it ran): unless that worker is this one, it is passed on,
  // and so are the next ones, until one is free to run here.
  private takeAround(work: Work): Work | undefined {
    const worklist = this.pool.worklist
    for (let next: Work | undefined = work; next !== undefined; next = worklist.shift()) {
      const runner = next.runningOn as Worker | undefined
      if (runner === undefined || runner === this) return next
      this.passOn(next, runner)
    }
    return undefined
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
  //
  // The loop is process_one_work for a plain work, whose whole run V8
  // inlines here as long as the bytecode it inlines fits its budget (920
  // bytes, counting a callee compiled on its own with all it inlined).
  // Beyond that budget, which callees stay out of line depends on what was
  // compiled first, and processes of the same program differed by a fifth
  // in speed (bench/RESULTS.md, workqueue). So taking the next work and
  // starting it are written here rather than called, the path is kept lean,
  // and every rare case is one test on it, handled out of line.
  private processWorks(): Promise<void> | undefined {
    const outer = setRunningSlot(this.slot)
    const scheduled = this.scheduled
    const worklist = this.pool.worklist
    try {
      for (;;) {
        // Works scheduled on this worker first (non-reentrancy), then the
        // pool's worklist, passing on those another worker still runs.
        let work = scheduled.length === 0 ? worklist.shift() : scheduled.shift()
        if (work !== undefined && work.runningOn !== undefined) work = this.takeAround(work)
        if (work === undefined) return undefined
        const pwq = work.pwq as Pwq
        let ran: Promise<void> | undefined
        if (work.ordinary === true && pwq.wq.cpuIntensive !== true) {
          this.begin(work, pwq)
          ran = this.call(work)
        } else ran = this.processSpecial(work, pwq)
        if (ran !== undefined) return ran.then(() => this.continueAfter())
        if (this.yields()) return undefined
      }
    } finally {
      setRunningSlot(outer)
    }
  }

  private continueAfter(): Promise<void> | undefined {
    return this.keepWorking() ? this.processWorks() : undefined
  }

  // keep_working: works are left for it, and it does not yield.
  private keepWorking(): boolean {
    return (this.scheduled.length !== 0 || !this.pool.worklist.empty) && !this.yields()
  }

  // Whether the worker stops although works may be left: it is dying, or,
  // per-CPU, another worker of its pool is runnable. Works scheduled on it
  // (non-reentrancy) are its own to run either way.
  private yields(): boolean {
    if (this.scheduled.length !== 0) return false
    return this.dying === true || (this.pool.concurrencyManaged === true && this.pool.nrRunning > 1)
  }

  // Lazy workqueues: the core thread passes a work on to the thread of the
  // CPU it was queued for, creating that thread; if creation fails, it runs
  // the work itself.
  private handOver(work: Work): Promise<void> | undefined {
    const cpu = work.handoverTo!
    work.handoverTo = undefined
    const pwq = work.pwq as Pwq
    const next = this.pool.system.lazyPool(pwq, cpu)
    if (next === undefined) return this.processSpecial(work, pwq)
    pwq.deactivate()
    next.add(work)
    return undefined
  }

  /**
   * The run of the pending instance begins (process_one_work). It runs once
   * per work, so it stores only what changes: the work's PENDING bit and
   * place are cleared in one store (its data word), and the rare cases cost
   * one test (see Work.startRunning). What the instance was queued with (pwq,
   * flush colour, cgroups) and who waits for it (its flushWork callers) move
   * to the worker, its slot and the run's waiters until it finishes: the
   * work may be queued again meanwhile, and a worker runs one work at a time.
   */
  private begin(work: Work, pwq: Pwq): void {
    if (this.runningPwq !== pwq) this.runningPwq = pwq
    this.runningColor = work.color
    work.startRunning(this)
    const slot = this.slot
    slot.work = work
    if (slot.owner !== pwq.wq) slot.owner = pwq.wq
    // An unbound pool starts every work at once: wake another worker for the rest.
    const pool = this.pool
    if (pool.concurrencyManaged !== true) pool.kick()
  }

  // process_one_work for a work with rare state (a cgroup work, a lazy
  // hand-over, one somebody waits for) or on a CPU-intensive workqueue.
  private processSpecial(work: Work, pwq: Pwq): Promise<void> | undefined {
    if (work.handoverTo !== undefined) return this.handOver(work)
    const target = work.cgroups
    this.begin(work, pwq)
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
    if (result !== undefined) return this.settle(result, work)
    this.finish(work)
    return undefined
  }

  // The work returned a value: a promise (any thenable) makes it sleep until
  // it settles; anything else means it is done.
  private settle(result: unknown, work: Work): Promise<void> | undefined {
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

  // The run ended: the worker counts as runnable again before the next
  // instance is activated (as the kernel clears WORKER_CPU_INTENSIVE), and
  // the instance's cgroup references are released once it is retired.
  private finish(work: Work): void {
    if (this.cpuIntensive === true) this.leaveCpuIntensive()
    work.finishRunning()
    const slot = this.slot
    slot.work = undefined
    this.runningPwq!.retire(this.runningColor)
    if (slot.target !== undefined) this.releaseTarget(slot)
  }

  private leaveCpuIntensive(): void {
    this.cpuIntensive = false
    this.updateRunning()
  }

  private releaseTarget(slot: WorkerSlot): void {
    const target = slot.target!
    slot.target = undefined
    this.pool.system.release(target)
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
