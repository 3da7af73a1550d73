/**
 * A bounded record of every transaction callback: which transaction, which
 * subsystem, which phase, how it ended and when. Stored in preallocated
 * typed arrays (a ring), so recording allocates nothing and can stay on.
 *
 * @module trace
 */
import type { Clock } from './clock.ts'

/** Where in a transaction an event happened. `begin`, `commit-point` and `end` belong to the core. */
export type TracePhase =
  | 'begin'
  | 'prepareSleep'
  | 'prepareSpin'
  | 'abortSpin'
  | 'abortSleep'
  | 'commit-point'
  | 'commit'
  | 'attach'
  | 'postAttach'
  | 'end'

/** How it ended: `failed` is a refusal, `fault` a plugin bug. */
export type TraceOutcome = 'ok' | 'failed' | 'fault'

const phases: ReadonlyArray<TracePhase> = [
  'begin',
  'prepareSleep',
  'prepareSpin',
  'abortSpin',
  'abortSleep',
  'commit-point',
  'commit',
  'attach',
  'postAttach',
  'end',
]
const outcomes: ReadonlyArray<TraceOutcome> = ['ok', 'failed', 'fault']

// An event's code packs, in one int: the outcome (bits 0–1), the phase (2–5),
// whether a detail was recorded (6) or is formatted from the number and
// reference columns (7), and who it concerns (8 and up: 0 is the core, n the
// n-th subsystem name the trace has seen). Plain events thus touch only typed
// arrays, and the detail columns are read only where a flag says so.
const HAS_DETAIL = 0x40
const FORMATTED = 0x80
const WHO_SHIFT = 8

/**
 * @internal The code of an event of `phase` with `outcome` (see
 * {@link Trace.recordCode}); computed once per call site, not per event.
 */
export const traceCode = (phase: TracePhase, outcome: TraceOutcome): number =>
  (phases.indexOf(phase) << 2) | outcomes.indexOf(outcome)

/**
 * Formats a detail recorded as a number and a reference
 * ({@link Trace.recordFormatted}): a shared function, so recording the detail
 * allocates nothing and keeps no per-transaction object alive.
 */
export type DetailFormat = (n: number, ref: unknown) => string

/** One recorded event. */
export interface TraceEvent {
  /** Position in the whole history (not reset when the ring wraps). */
  readonly seq: number
  readonly transaction: number
  /** The subsystem called, or undefined for the core's own events. */
  readonly subsystem: string | undefined
  readonly phase: TracePhase
  readonly outcome: TraceOutcome
  /** Clock time in milliseconds, as of the transaction's start or its last wait (see {@link Trace.tick}). */
  readonly time: number
  /** Errno or fault description when the outcome is not `ok`; a summary on `begin`/`end`. */
  readonly detail: string | undefined
}

/** The ring of recent {@link TraceEvent}s. */
export class Trace {
  /** Set to false to stop recording (reading still works). */
  enabled = true
  /**
   * Set to true to also record transactions that move a kernel thread (by
   * its pid or Task; moving all of a cgroup's tasks is recorded whoever
   * they are). They are left out by default: a cgroup-aware workqueue moves
   * a worker thread into the cgroup of every work it runs, each move a
   * transaction of three events plus a few per controller, and that traffic
   * would push the transactions a user is looking at out of the ring within
   * milliseconds. Their transaction numbers are still taken, so the trace
   * shows a gap.
   */
  kernelThreads = false
  /** The number of events kept: the requested capacity rounded up to a power of two. */
  readonly capacity: number
  // capacity - 1: an event's slot is `seq & mask`.
  private readonly mask: number
  private readonly transactions: Int32Array
  private readonly codes: Int32Array
  private readonly times: Float64Array
  private readonly details: Array<string | (() => string) | undefined>
  private readonly formats: Array<DetailFormat | undefined>
  private readonly numbers: Float64Array
  private readonly refs: Array<unknown>
  // Subsystem names by the index codes carry (0: the core's own events).
  private readonly names: Array<string | undefined> = [undefined]
  private readonly nameIndex = new Map<string, number>()
  private next = 0
  private time = 0

  constructor(
    private readonly clock: Clock,
    capacity = 4096,
  ) {
    const size = 1 << Math.ceil(Math.log2(Math.max(2, capacity)))
    this.capacity = size
    this.mask = size - 1
    this.transactions = new Int32Array(size)
    this.codes = new Int32Array(size)
    this.times = new Float64Array(size)
    this.details = new Array<string | (() => string) | undefined>(size).fill(undefined)
    this.formats = new Array<DetailFormat | undefined>(size).fill(undefined)
    this.numbers = new Float64Array(size)
    this.refs = new Array<unknown>(size).fill(undefined)
  }

  /**
   * Reads the clock; events recorded until the next tick carry this time.
   * Reading a clock costs more than a synchronous callback on some machines,
   * so the transaction ticks when it starts and after every wait, not per event.
   */
  tick(): void {
    if (this.enabled) this.time = this.clock.now()
  }

  /** @internal The index events of `subsystem` carry (see {@link Trace.recordCode}); undefined is the core. */
  who(subsystem: string | undefined): number {
    if (subsystem === undefined) return 0
    let index = this.nameIndex.get(subsystem)
    if (index === undefined) {
      index = this.names.length
      this.names.push(subsystem)
      this.nameIndex.set(subsystem, index)
    }
    return index
  }

  /** Records one event. */
  record(
    transaction: number,
    subsystem: string | undefined,
    phase: TracePhase,
    outcome: TraceOutcome,
    detail?: string | (() => string),
  ): void {
    if (!this.enabled) return
    const code = traceCode(phase, outcome)
    if (detail === undefined) return this.recordCode(transaction, this.who(subsystem), code)
    const slot = this.next & this.mask
    this.transactions[slot] = transaction
    this.codes[slot] = code | HAS_DETAIL | (this.who(subsystem) << WHO_SHIFT)
    this.times[slot] = this.time
    this.details[slot] = detail
    this.next++
  }

  /**
   * @internal {@link Trace.record} for a hot path that has its `who` index and
   * {@link traceCode} at hand: three typed-array stores.
   */
  recordCode(transaction: number, who: number, code: number): void {
    if (!this.enabled) return
    const slot = this.next & this.mask
    this.transactions[slot] = transaction
    this.codes[slot] = code | (who << WHO_SHIFT)
    this.times[slot] = this.time
    this.next++
  }

  /**
   * Records an event whose detail is `format(n, ref)`, formatted only when the
   * trace is read. `ref` should be an object that lives anyway (a cgroup), so
   * the ring keeps nothing alive that would otherwise be garbage.
   */
  recordFormatted(transaction: number, subsystem: string | undefined, phase: TracePhase, outcome: TraceOutcome, format: DetailFormat, n: number, ref: unknown): void {
    this.recordFormattedCode(transaction, this.who(subsystem), traceCode(phase, outcome), format, n, ref)
  }

  /** @internal {@link Trace.recordFormatted} with the `who` index and {@link traceCode} at hand. */
  recordFormattedCode(transaction: number, who: number, code: number, format: DetailFormat, n: number, ref: unknown): void {
    if (!this.enabled) return
    const slot = this.next & this.mask
    this.transactions[slot] = transaction
    this.codes[slot] = code | FORMATTED | (who << WHO_SHIFT)
    this.times[slot] = this.time
    this.formats[slot] = format
    this.numbers[slot] = n
    this.refs[slot] = ref
    this.next++
  }

  /** Total number of events ever recorded. */
  get recorded(): number {
    return this.next
  }

  /** The retained events, oldest first; optionally only those of one transaction. */
  events(transaction?: number): ReadonlyArray<TraceEvent> {
    const out: Array<TraceEvent> = []
    const first = Math.max(0, this.next - this.capacity)
    for (let seq = first; seq < this.next; seq++) {
      const slot = seq & this.mask
      if (transaction !== undefined && this.transactions[slot] !== transaction) continue
      const code = this.codes[slot]!
      out.push({
        seq,
        transaction: this.transactions[slot]!,
        subsystem: this.names[code >>> WHO_SHIFT],
        phase: phases[(code >> 2) & 0xf]!,
        outcome: outcomes[code & 3]!,
        time: this.times[slot]!,
        detail:
          (code & FORMATTED) !== 0 ? this.formats[slot]!(this.numbers[slot]!, this.refs[slot]) : (code & HAS_DETAIL) !== 0 ? describe(this.details[slot]) : undefined,
      })
    }
    return out
  }

  /** Forgets every retained event. */
  clear(): void {
    this.next = 0
  }
}

// Details may be recorded as a function so the hot path formats nothing.
const describe = (detail: string | (() => string) | undefined): string | undefined =>
  typeof detail === 'function' ? detail() : detail

/** Renders events as a readable timeline, one line per event, times relative to the first. */
export const formatTimeline = (events: ReadonlyArray<TraceEvent>): string => {
  const start = events[0]?.time ?? 0
  return events
    .map((event) => {
      const at = `+${(event.time - start).toFixed(3)}ms`.padStart(11)
      const who = (event.subsystem ?? '·core').padEnd(10)
      const mark = event.outcome === 'ok' ? '✓' : event.outcome === 'failed' ? '✗' : '‼'
      const detail = event.detail === undefined ? '' : `  ${event.detail}`
      return `${at}  tx${event.transaction}  ${who} ${event.phase.padEnd(12)} ${mark}${detail}`
    })
    .join('\n')
}
