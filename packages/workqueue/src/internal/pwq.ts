/**
 * pool_workqueue: the link between one workqueue and one worker pool. It
 * counts the workqueue's active instances in that pool against max_active
 * (per pwq for a bound workqueue, workqueue-wide for an unbound one, since
 * v6.9) and parks the rest on its inactive list, activating them in turn as
 * active ones finish (see workqueue-anchors §1.4).
 */
import type { Strategy } from '../codecs.ts'
import { Place, type Work } from '../work.ts'
import { Deque } from './deque.ts'
import type { Pool } from './pool.ts'

// Module-local copies of the places the hot path stores: an imported
// binding is read through a cell and checked on every use, a local const is
// folded into the code.
const ON_WORKLIST = Place.worklist
const ON_INACTIVE = Place.inactive

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

/** pool_workqueue: one workqueue's share of one pool. */
export class Pwq {
  nrActive = 0
  readonly inactive = new Deque<Work>()
  /** The workqueue's WQ_UNBOUND, read here on every queueing and finish. */
  readonly unbound: boolean

  constructor(
    readonly wq: PwqOwner,
    readonly pool: Pool,
  ) {
    this.unbound = wq.unbound
  }

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
    if (this.unbound === true ? wq.activeTotal < wq.maxActive : this.nrActive < wq.maxActive) {
      this.activate(work)
    } else {
      work.waitIn(ON_INACTIVE)
      this.inactive.push(work)
      if (this.unbound === true) this.waitForRoom()
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
    if (this.unbound === true) active = ++wq.activeTotal
    if (active > wq.peakActive) wq.peakActive = active
    this.enterWorklist(work)
  }

  private enterWorklist(work: Work): void {
    const pool = this.pool
    work.waitIn(ON_WORKLIST)
    pool.worklist.push(work)
    pool.kick()
  }

  /**
   * An active instance of this pwq finished or was stolen: it frees its
   * max_active slot and its flush colour counts down. (An inactive one
   * that is stolen only counts down its colour; the cgroup references of
   * either are the caller's to release.)
   */
  retire(color: number): void {
    this.deactivate()
    this.wq.instanceDone(color)
  }

  /**
   * An active instance finished or was stolen: activate the first inactive
   * one — of this pwq for a bound workqueue, of the next waiting pwq in turn
   * for an unbound one.
   */
  deactivate(): void {
    // Bound: the freed slot passes straight to the first inactive work, the
    // count stays. (Unbound out of line: deactivate is inlined into the
    // worker loop, whose inlining budget, V8's, in bytecode, it shares with
    // the rest of a run.)
    if (this.unbound === true) this.deactivateUnbound()
    else if (this.inactive.empty) this.nrActive--
    else this.enterWorklist(this.inactive.shift()!)
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
      if (!pwq.inactive.empty) wq.waiting.push(pwq)
    }
  }
}
