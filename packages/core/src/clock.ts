/**
 * Time for the model: a {@link Clock} is read by the trace and drives timers
 * (workqueue idle timeouts, delayed work). {@link realClock} follows the
 * machine; {@link VirtualClock} moves only when told to, so tests are
 * deterministic and simulations run minutes of scenario in milliseconds.
 *
 * @module clock
 */

/** A cancellable timer. */
export interface Timer {
  cancel(): void
}

/** A source of time and timers, in milliseconds. */
export interface Clock {
  /** Monotonic milliseconds (fractional). */
  now(): number
  /** Runs `callback` once `ms` have passed. */
  setTimer(ms: number, callback: () => void): Timer
  /** Resolves once `ms` have passed. */
  sleep(ms: number): Promise<void>
}

/** The machine's monotonic clock and Node's timers. */
export const realClock: Clock = {
  now: () => performance.now(),
  setTimer: (ms, callback) => {
    const handle = setTimeout(callback, ms)
    return { cancel: () => clearTimeout(handle) }
  },
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
}

interface PendingTimer {
  readonly at: number
  readonly seq: number
  readonly callback: () => void
  cancelled: boolean
}

/** A clock that advances only through {@link VirtualClock.advance}. */
export class VirtualClock implements Clock {
  private time: number
  private seq = 0
  private readonly timers: Array<PendingTimer> = []

  constructor(start = 0) {
    this.time = start
  }

  now(): number {
    return this.time
  }

  setTimer(ms: number, callback: () => void): Timer {
    const timer: PendingTimer = { at: this.time + Math.max(0, ms), seq: this.seq++, callback, cancelled: false }
    // Keep the list ordered by due time, then by creation order.
    let i = this.timers.length
    while (i > 0) {
      const before = this.timers[i - 1]!
      if (before.at < timer.at || (before.at === timer.at && before.seq < timer.seq)) break
      i--
    }
    this.timers.splice(i, 0, timer)
    return { cancel: () => void (timer.cancelled = true) }
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.setTimer(ms, resolve))
  }

  /** Number of timers that have not fired or been cancelled. */
  pendingTimers(): number {
    return this.timers.filter((timer) => !timer.cancelled).length
  }

  /**
   * Moves time forward by `ms`, firing due timers in order. Between timers it
   * lets promise callbacks run, so work woken by a timer can schedule the next.
   */
  async advance(ms: number): Promise<void> {
    const end = this.time + ms
    for (;;) {
      await flushMicrotasks()
      const next = this.timers[0]
      if (next === undefined || next.at > end) break
      this.timers.shift()
      this.time = Math.max(this.time, next.at)
      if (!next.cancelled) next.callback()
    }
    this.time = end
    await flushMicrotasks()
  }
}

const flushMicrotasks = async (): Promise<void> => {
  // A macrotask boundary lets every chained promise callback run.
  await new Promise<void>((resolve) => setImmediate(resolve))
}
