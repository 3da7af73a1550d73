/**
 * The memory controller (mm/memcontrol.c, memcontrol-v1.c). Tasks charge
 * and uncharge memory through {@link MemorySubsystem.charge} /
 * {@link MemorySubsystem.uncharge}; a charge belongs to the cgroup it was
 * made in and its uncharge goes back there, even after the task moved. The
 * try-charge is hierarchical: it fails at the first level over its limit
 * with ENOMEM and counts the event there (`memory.failcnt` on v1,
 * `memory.events` max / oom on v2, hierarchically, with `.local` counts).
 *
 * Migration: on v2 charges never move. On v1, when the destination has
 * `memory.move_charge_at_immigrate` set and the taskset holds a process's
 * leader, the process's charges in the source are precharged on the
 * destination in prepareSleep (ENOMEM and nothing left charged if that
 * fails), moved at commit and released on abort. Usage at every level is
 * at all times the sum of the charges below it plus the precharges in
 * flight below it; a charge made while the move is in flight stays where it
 * was made if the precharge does not cover it, as the kernel gives up on
 * pages beyond its precharge.
 *
 * When the last thread of a process is reaped its remaining charges are
 * returned (the address space is freed); when a cgroup is removed its
 * charges are handed to the parent (reparented).
 *
 * @module memory
 */
import * as E from 'fp-ts/lib/Either.js'
import * as t from 'io-ts'
import { badArgument, decode, systemError, Task, type CgtxError, type Css, type ThreadGroup } from '@cgtx/core'
import { memoryBytes, PAGE_COUNTER_MAX_BYTES, u64 } from '../codecs.ts'
import { HierarchicalCounter } from '../counter.ts'
import { defineSubsystem, extend, failWith, type DefinedSubsystem } from '../defineSubsystem.ts'

/** The events `memory.events` counts. */
export interface MemoryEvents {
  low: number
  high: number
  max: number
  oom: number
  oom_kill: number
  oom_group_kill: number
}

/** Per-cgroup state of the memory controller. */
export interface MemoryState {
  /** Bytes charged here or below, with `memory.max` (v1 `limit_in_bytes`) as its limit. */
  readonly counter: HierarchicalCounter
  /** `memory.high` in bytes (`Infinity` for max). */
  high: number
  /** Events of this cgroup and its descendants (`memory.events`). */
  readonly events: MemoryEvents
  /** Events of this cgroup alone (`memory.events.local`). */
  readonly eventsLocal: MemoryEvents
  /** v1 `memory.move_charge_at_immigrate` (bit 0: anonymous, bit 1: file pages). */
  moveChargeAtImmigrate: number
}

/** One charge: bytes charged by a process in a cgroup. */
export interface MemoryCharge {
  readonly bytes: number
  /** The process that made it. */
  readonly owner: ThreadGroup
  /** The css it is charged to (changes only by a v1 move or a reparent). */
  readonly css: Css<MemoryState>
  /** False once uncharged. */
  readonly live: boolean
}

/** The memory controller: a subsystem plus the charge API. */
export interface MemorySubsystem extends DefinedSubsystem<MemoryState> {
  /**
   * Charges `bytes` to the task's current memory cgroup (hierarchical
   * try-charge). ENOMEM if a level would exceed its limit (nothing charged);
   * BadArgument for a task that is not live or a byte count that is not a
   * positive safe integer; ENODEV if the controller is bound nowhere.
   */
  charge(task: unknown, bytes: unknown): E.Either<CgtxError, MemoryCharge>
  /** Returns a charge to the cgroup it is charged to. BadArgument if it is not a live charge of this controller. */
  uncharge(charge: MemoryCharge): E.Either<CgtxError, void>
  /** The live charges of a task's process, oldest first (none for anything but a task). */
  chargesOf(task: Task): ReadonlyArray<MemoryCharge>
}

interface Charge {
  readonly bytes: number
  readonly owner: ThreadGroup
  css: Css<MemoryState>
  live: boolean
  // Links in the owner's list (oldest first).
  prev: Charge | undefined
  next: Charge | undefined
}

// A process's live charges: an intrusive list, so adding and dropping a
// charge costs a few pointer writes.
interface ChargeList {
  head: Charge | undefined
  tail: Charge | undefined
}

function* chargesIn(list: ChargeList | undefined): Generator<Charge> {
  for (let at = list?.head; at !== undefined; ) {
    const next = at.next
    yield at
    at = next
  }
}

// A v1 move in flight: bytes precharged on `to` for the charges of `owner` in `from`.
interface PlannedMove {
  readonly owner: ThreadGroup
  readonly from: Css<MemoryState>
  readonly to: Css<MemoryState>
  readonly precharged: number
}

// The plan of a transaction that moves no charges (v2, or move-charge off).
const NOTHING_PLANNED: ReadonlyArray<PlannedMove> = []

const noEvents = (): MemoryEvents => ({ low: 0, high: 0, max: 0, oom: 0, oom_kill: 0, oom_group_kill: 0 })

const event = (css: Css<MemoryState>, kind: keyof MemoryEvents): void => {
  css.state.eventsLocal[kind]++
  for (let at: Css<MemoryState> | undefined = css; at !== undefined; at = at.parent) at.state.events[kind]++
}

const cssOfCounter = (css: Css<MemoryState>, counter: HierarchicalCounter): Css<MemoryState> | undefined => {
  for (let at: Css<MemoryState> | undefined = css; at !== undefined; at = at.parent) if (at.state.counter === counter) return at
  return undefined
}

const renderEvents = (events: MemoryEvents): string =>
  `low ${events.low}\nhigh ${events.high}\nmax ${events.max}\noom ${events.oom}\noom_kill ${events.oom_kill}\noom_group_kill ${events.oom_group_kill}\n`

const bytesText = (bytes: number, unlimited: string): string => (bytes === Number.POSITIVE_INFINITY ? unlimited : `${bytes}\n`)

// Every successful uncharge returns the same (immutable) value.
const UNCHARGED: E.Either<CgtxError, void> = E.right(undefined)

const Bytes = t.refinement(t.number, (n) => Number.isSafeInteger(n) && n > 0, 'positive safe integer')

const moveMask: t.Type<number, string, string> = new t.Type<number, string, string>(
  'move_charge_at_immigrate',
  (u): u is number => typeof u === 'number' && (u & ~3) === 0,
  (input, context) => {
    const value = u64.validate(input, context)
    if (E.isLeft(value)) return value
    return (value.right & ~3) !== 0 ? failWith('EINVAL', input, context) : value
  },
  (value) => `${value}\n`,
)

/** Creates a memory controller. */
export const memory = (): MemorySubsystem => {
  // Live charges by process, oldest first (a process's entry goes when it is reaped).
  const charges = new Map<ThreadGroup, ChargeList>()

  const dropCharge = (charge: Charge, list: ChargeList): void => {
    charge.live = false
    charge.css.state.counter.uncharge(charge.bytes)
    if (charge.prev === undefined) list.head = charge.next
    else charge.prev.next = charge.next
    if (charge.next === undefined) list.tail = charge.prev
    else charge.next.prev = charge.prev
    charge.prev = charge.next = undefined
  }

  const base = defineSubsystem<MemoryState>({
    name: 'memory',
    state: (parent) => ({
      counter: new HierarchicalCounter(parent?.counter),
      high: Number.POSITIVE_INFINITY,
      events: noEvents(),
      eventsLocal: noEvents(),
      moveChargeAtImmigrate: 0,
    }),
    // Charges of a removed cgroup go to its parent, which already counts them.
    offline: (css) => {
      const parent = css.parent
      if (parent === undefined) return
      for (const list of charges.values()) {
        for (const charge of chargesIn(list)) {
          if (charge.css !== css) continue
          css.state.counter.usage -= charge.bytes
          charge.css = parent
        }
      }
    },
    files: [
      // v2
      { name: 'memory.current', versions: ['v2'], read: (css) => `${css.state.counter.usage}\n` },
      { name: 'memory.peak', versions: ['v2'], read: (css) => `${css.state.counter.peak}\n` },
      {
        name: 'memory.max',
        versions: ['v2'],
        read: (css) => bytesText(css.state.counter.limit, 'max\n'),
        write: {
          codec: memoryBytes('memory.max', 'max'),
          invalid: 'EINVAL',
          apply: (css, limit) => {
            css.state.counter.limit = limit
            // No reclaim in the model: usage above the new max is an OOM situation.
            if (css.state.counter.usage > limit) event(css, 'max')
          },
        },
      },
      {
        name: 'memory.high',
        versions: ['v2'],
        read: (css) => bytesText(css.state.high, 'max\n'),
        write: { codec: memoryBytes('memory.high', 'max'), invalid: 'EINVAL', apply: (css, high) => void (css.state.high = high) },
      },
      { name: 'memory.events', versions: ['v2'], read: (css) => renderEvents(css.state.events) },
      { name: 'memory.events.local', versions: ['v2'], read: (css) => renderEvents(css.state.eventsLocal) },
      // v1
      { name: 'memory.usage_in_bytes', on: 'all', versions: ['v1'], read: (css) => `${css.state.counter.usage}\n` },
      { name: 'memory.max_usage_in_bytes', on: 'all', versions: ['v1'], read: (css) => `${css.state.counter.peak}\n` },
      { name: 'memory.failcnt', on: 'all', versions: ['v1'], read: (css) => `${css.state.counter.failcnt}\n` },
      {
        name: 'memory.limit_in_bytes',
        on: 'all',
        versions: ['v1'],
        read: (css) => bytesText(css.state.counter.limit, `${PAGE_COUNTER_MAX_BYTES}\n`),
        write: {
          codec: memoryBytes('memory.limit_in_bytes', '-1'),
          invalid: 'EINVAL',
          check: (css, limit, ctx) => {
            if (css.cgroup.isRoot) return ctx.refuse('EINVAL', 'the root has no limit')
            // mem_cgroup_resize_max: no reclaim in the model, so usage above the new limit is EBUSY.
            if (css.state.counter.usage > limit) return ctx.refuse('EBUSY', 'usage above the new limit')
            return undefined
          },
          apply: (css, limit) => void (css.state.counter.limit = limit),
        },
      },
      {
        name: 'memory.move_charge_at_immigrate',
        on: 'all',
        versions: ['v1'],
        read: (css) => `${css.state.moveChargeAtImmigrate}\n`,
        write: { codec: moveMask, invalid: 'EINVAL', apply: (css, mask) => void (css.state.moveChargeAtImmigrate = mask) },
      },
    ],
    // The last thread of a process reaped: its address space goes, and its charges with it.
    release: (task) => {
      if (!task.isLeader || task.group.threads.size > 1) return
      const list = charges.get(task.group)
      if (list !== undefined) for (const charge of chargesIn(list)) dropCharge(charge, list)
      charges.delete(task.group)
    },
    attach: {
      prepareSleep: (ctx, moves) => {
        let planned: Array<PlannedMove> | undefined
        for (const move of moves) {
          if (move.to.cgroup.hierarchy.version !== 'v1' || move.to.state.moveChargeAtImmigrate === 0 || !move.task.isLeader) continue
          let bytes = 0
          for (const charge of chargesIn(charges.get(move.task.group))) if (charge.css === move.from) bytes += charge.bytes
          if (bytes === 0) continue
          const over = move.to.state.counter.tryCharge(bytes)
          if (over !== undefined) {
            for (const done of planned ?? []) done.to.state.counter.uncharge(done.precharged)
            return ctx.refuse('ENOMEM', `precharge of ${bytes} bytes in ${move.to.cgroup.path} failed`)
          }
          ;(planned ??= []).push({ owner: move.task.group, from: move.from, to: move.to, precharged: bytes })
        }
        ctx.privateState = planned ?? NOTHING_PLANNED
        return undefined
      },
      abortSleep: (ctx) => {
        for (const done of ctx.privateState as ReadonlyArray<PlannedMove>) done.to.state.counter.uncharge(done.precharged)
      },
      commit: (ctx) => {
        for (const done of ctx.privateState as ReadonlyArray<PlannedMove>) {
          let left = done.precharged
          for (const charge of chargesIn(charges.get(done.owner))) {
            if (charge.css !== done.from || charge.bytes > left) continue
            left -= charge.bytes
            done.from.state.counter.uncharge(charge.bytes)
            charge.css = done.to
          }
          // Precharge not used (charges returned meanwhile) is given back.
          if (left > 0) done.to.state.counter.uncharge(left)
        }
      },
    },
  })

  return extend(base, {
    charge: (task: unknown, bytes: unknown): E.Either<CgtxError, MemoryCharge> => {
      if (!(task instanceof Task) || task.state === 'reaped') return E.left(badArgument('task', task, 'a live task'))
      if (typeof bytes !== 'number' || !Number.isSafeInteger(bytes) || bytes <= 0) return decode(Bytes, bytes, 'bytes') as E.Either<CgtxError, never>
      const css = base.cssOf(task)
      if (css === undefined) return E.left(systemError('ENODEV', 'memory charge', { subsystem: 'memory', reason: 'not bound to a hierarchy' }))
      const over = css.state.counter.tryCharge(bytes)
      if (over !== undefined) {
        const at = cssOfCounter(css, over)
        if (at !== undefined) {
          event(at, 'max')
          event(at, 'oom')
        }
        return E.left(systemError('ENOMEM', `memory charge of ${bytes} bytes by ${task.tid}`, { subsystem: 'memory', reason: `over the limit of ${at?.cgroup.path ?? '?'}` }))
      }
      for (let at: Css<MemoryState> | undefined = css; at !== undefined; at = at.parent) {
        if (at.state.counter.usage > at.state.high) event(at, 'high')
      }
      let list = charges.get(task.group)
      if (list === undefined) charges.set(task.group, (list = { head: undefined, tail: undefined }))
      const charge: Charge = { bytes, owner: task.group, css, live: true, prev: list.tail, next: undefined }
      if (list.tail === undefined) list.head = charge
      else list.tail.next = charge
      list.tail = charge
      return E.right(charge)
    },
    uncharge: (charge: MemoryCharge): E.Either<CgtxError, void> => {
      if (typeof charge !== 'object' || charge === null) return E.left(badArgument('charge', charge, 'a live charge of this controller'))
      const own = charge as Charge
      const list = own.live === true ? charges.get(own.owner) : undefined
      if (list === undefined || (own.prev === undefined ? list.head !== own : own.prev.next !== own))
        return E.left(badArgument('charge', { bytes: charge.bytes }, 'a live charge of this controller'))
      dropCharge(own, list)
      return UNCHARGED
    },
    chargesOf: (task: Task): ReadonlyArray<MemoryCharge> => (task instanceof Task ? [...chargesIn(charges.get(task.group))] : []),
  })
}
