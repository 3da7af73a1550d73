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
// Marks an event whose detail is formatted from the number and reference
// columns (so plain events need not clear those columns).
const FORMATTED = 0x80

// Phase and outcome packed in one byte: phase * 4 + outcome.
const codeOf = (phase: TracePhase, outcome: TraceOutcome): number => {
  const o = outcome === 'ok' ? 0 : outcome === 'failed' ? 1 : 2
  switch (phase) {
    case 'begin':
      return o
    case 'prepareSleep':
      return 4 + o
    case 'prepareSpin':
      return 8 + o
    case 'abortSpin':
      return 12 + o
    case 'abortSleep':
      return 16 + o
    case 'commit-point':
      return 20 + o
    case 'commit':
      return 24 + o
    case 'attach':
      return 28 + o
    case 'postAttach':
      return 32 + o
    case 'end':
      return 36 + o
  }
}

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
  private readonly transactions: Int32Array
  private readonly codes: Uint8Array
  private readonly times: Float64Array
  private readonly subsystems: Array<string | undefined>
  private readonly details: Array<string | (() => string) | undefined>
  private readonly formats: Array<DetailFormat | undefined>
  private readonly numbers: Float64Array
  private readonly refs: Array<unknown>
  private next = 0
  private time = 0

  constructor(
    private readonly clock: Clock,
    readonly capacity = 4096,
  ) {
    this.transactions = new Int32Array(capacity)
    this.codes = new Uint8Array(capacity)
    this.times = new Float64Array(capacity)
    this.subsystems = new Array<string | undefined>(capacity).fill(undefined)
    this.details = new Array<string | (() => string) | undefined>(capacity).fill(undefined)
    this.formats = new Array<DetailFormat | undefined>(capacity).fill(undefined)
    this.numbers = new Float64Array(capacity)
    this.refs = new Array<unknown>(capacity).fill(undefined)
  }

  /**
   * Reads the clock; events recorded until the next tick carry this time.
   * Reading a clock costs more than a synchronous callback on some machines,
   * so the transaction ticks when it starts and after every wait, not per event.
   */
  tick(): void {
    if (this.enabled) this.time = this.clock.now()
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
    const slot = this.next % this.capacity
    this.transactions[slot] = transaction
    this.subsystems[slot] = subsystem
    this.codes[slot] = codeOf(phase, outcome)
    this.times[slot] = this.time
    this.details[slot] = detail
    this.next++
  }

  /**
   * Records an event whose detail is `format(n, ref)`, formatted only when the
   * trace is read. `ref` should be an object that lives anyway (a cgroup), so
   * the ring keeps nothing alive that would otherwise be garbage.
   */
  recordFormatted(transaction: number, subsystem: string | undefined, phase: TracePhase, outcome: TraceOutcome, format: DetailFormat, n: number, ref: unknown): void {
    if (!this.enabled) return
    const slot = this.next % this.capacity
    this.transactions[slot] = transaction
    this.subsystems[slot] = subsystem
    this.codes[slot] = codeOf(phase, outcome) | FORMATTED
    this.times[slot] = this.time
    this.details[slot] = undefined
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
      const slot = seq % this.capacity
      if (transaction !== undefined && this.transactions[slot] !== transaction) continue
      out.push({
        seq,
        transaction: this.transactions[slot]!,
        subsystem: this.subsystems[slot],
        phase: phases[(this.codes[slot]! & ~FORMATTED) >> 2]!,
        outcome: outcomes[this.codes[slot]! & 3]!,
        time: this.times[slot]!,
        detail: (this.codes[slot]! & FORMATTED) !== 0 ? this.formats[slot]!(this.numbers[slot]!, this.refs[slot]) : describe(this.details[slot]),
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
