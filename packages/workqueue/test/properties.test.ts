/**
 * Properties over random operation sequences (fc.commands) and random
 * interleavings (fc.scheduler): every queued instance runs exactly once or
 * is cancelled; a work never runs on two workers at once; max_active is
 * never exceeded; each cgroup's CPU accounting equals the sum of its works'
 * burns; no cgroup reference outlives its work.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  burn,
  cancelWorkSync,
  flushWork,
  flushWorkqueue,
  queueCgroupWork,
  queueDelayedWork,
  queueWork,
  type Work,
  type Workqueue,
} from '../src/index.ts'
import { cg, ok, setup, work, type Setup } from './fixtures.ts'
import { Place } from '../src/work.ts'

const CGROUPS = ['/', '/a', '/b', '/c'] as const

interface Tracked {
  readonly work: Work
  readonly cgroupWq: boolean
  /** Instances queued (queue returned true) and cancelled (cancelWorkSync stole one). */
  queued: number
  cancelled: number
  /** Instances ended: runs that returned, and instances stolen by a cancel (counted when stolen). */
  finished: number
  stolen: number
  /** Runs started, and runs overlapping another run of the same work. */
  runs: number
  overlaps: number
  running: number
  /** CPU burnt per cgroup path by this work's runs. */
  readonly burnt: Map<string, number>
}

interface Real {
  readonly env: Setup
  readonly wqs: ReadonlyArray<Workqueue>
  readonly works: ReadonlyArray<Tracked>
  /** Running works per workqueue, and the most seen. */
  readonly active: Map<Workqueue, number>
  readonly peak: Map<Workqueue, number>
  readonly pending: Array<Promise<unknown>>
  /** The cgroup each queued cgroup instance was queued for, oldest first. */
  readonly targets: Map<Tracked, Array<string>>
}

type Model = Record<string, never>

const build = (strategy: 'migrate' | 'pools' | 'remote-charge', durations: ReadonlyArray<number>): Real => {
  const env = setup({ idleTimeoutMs: 50 })
  const wqs = [
    // Two of the eight works are bound's: max_active 1 can be overrun.
    ok(env.system.createWorkqueue({ name: 'bound', maxActive: 1 })),
    ok(env.system.createWorkqueue({ name: 'unbound', flags: { unbound: true }, maxActive: 3 })),
    ok(env.system.createWorkqueue({ name: 'cgroup', flags: { unbound: true, cgroup: true }, strategy, maxActive: 2 })),
  ]
  const active = new Map<Workqueue, number>()
  const peak = new Map<Workqueue, number>()
  const targets = new Map<Tracked, Array<string>>()
  const works: Array<Tracked> = durations.map((ms, i) => {
    const tracked: Tracked = {
      work: undefined as unknown as Work,
      cgroupWq: i % 2 === 1,
      queued: 0,
      cancelled: 0,
      finished: 0,
      stolen: 0,
      runs: 0,
      overlaps: 0,
      running: 0,
      burnt: new Map(),
    }
    const wq = tracked.cgroupWq ? wqs[2]! : wqs[i % 4 === 0 ? 0 : 1]!
    ;(tracked as { work: Work }).work = work(async () => {
      tracked.runs++
      if (tracked.running++ > 0) tracked.overlaps++
      const now = (active.get(wq) ?? 0) + 1
      active.set(wq, now)
      peak.set(wq, Math.max(peak.get(wq) ?? 0, now))
      const target = tracked.cgroupWq ? (targets.get(tracked)!.shift() ?? '?') : '/'
      if (wq === wqs[0]) {
        // Bound works sleep: a burning per-CPU worker counts as runnable, and
        // concurrency management would never let a second one start.
        await env.clock.sleep(ms)
      } else {
        await burn(ms)
        tracked.burnt.set(target, (tracked.burnt.get(target) ?? 0) + ms)
      }
      active.set(wq, active.get(wq)! - 1)
      tracked.running--
      tracked.finished++
    }, `w${i}`)
    return tracked
  })
  return { env, wqs, works, active, peak, pending: [], targets }
}

const wqOf = (real: Real, i: number): Workqueue => (real.works[i]!.cgroupWq ? real.wqs[2]! : real.wqs[i % 4 === 0 ? 0 : 1]!)

class Queue implements fc.AsyncCommand<Model, Real> {
  constructor(readonly index: number, readonly cgroup: number, readonly delay: number) {}
  check = (): boolean => true
  async run(_: Model, real: Real): Promise<void> {
    const tracked = real.works[this.index % real.works.length]!
    const wq = wqOf(real, this.index % real.works.length)
    const path = CGROUPS[this.cgroup]!
    const queued = tracked.cgroupWq
      ? this.delay > 0
        ? queueDelayedWork(wq, tracked.work, this.delay, { cgroup: cg(path) })
        : queueCgroupWork(wq, tracked.work, cg(path))
      : this.delay > 0
        ? queueDelayedWork(wq, tracked.work, this.delay)
        : queueWork(wq, tracked.work)
    if (ok(queued)) {
      tracked.queued++
      if (tracked.cgroupWq) real.targets.set(tracked, [...(real.targets.get(tracked) ?? []), path])
    }
  }
  toString = (): string => `queue(w${this.index}, ${CGROUPS[this.cgroup]}, +${this.delay})`
}

class Cancel implements fc.AsyncCommand<Model, Real> {
  constructor(readonly index: number) {}
  check = (): boolean => true
  async run(_: Model, real: Real): Promise<void> {
    const tracked = real.works[this.index % real.works.length]!
    const wasPendingTarget = tracked.work.isPending && tracked.cgroupWq
    // A cancel steals the pending instance at once, unless another cancel holds PENDING.
    const steals = tracked.work.isPending && tracked.work.canceling === undefined
    const cancelled = cancelWorkSync(tracked.work)
    if (steals) tracked.stolen++
    real.pending.push(
      cancelled.then((stolen) => {
        expect(ok(stolen)).toBe(steals)
        if (!ok(stolen)) return
        tracked.cancelled++
        // The stolen instance is the newest queued one.
        if (wasPendingTarget) real.targets.get(tracked)!.pop()
      }),
    )
  }
  toString = (): string => `cancel(w${this.index})`
}

class Advance implements fc.AsyncCommand<Model, Real> {
  constructor(readonly ms: number) {}
  check = (): boolean => true
  async run(_: Model, real: Real): Promise<void> {
    await real.env.clock.advance(this.ms)
  }
  toString = (): string => `advance(${this.ms})`
}

class Flush implements fc.AsyncCommand<Model, Real> {
  constructor(readonly index: number) {}
  check = (): boolean => true
  async run(_: Model, real: Real): Promise<void> {
    const wq = real.wqs[this.index % real.wqs.length]!
    // Everything queued on wq before the flush — waiting or already running —
    // must have finished when it resolves: every instance queued so far has
    // ended (run or stolen). A delayed work still on its timer when the
    // flush starts is not queued yet (flush_workqueue does not wait for it,
    // flush_delayed_work does), even if its timer fires meanwhile; a running
    // work that is also back on a timer is left out for the same reason.
    const queuedOrRunning = (work: Work): boolean => (work.isPending && work.place !== Place.timer) || (work.isRunning && !work.isPending)
    const before = real.works.filter((tracked) => queuedOrRunning(tracked.work) && wqOf(real, real.works.indexOf(tracked)) === wq)
    const snapshot = before.map((tracked) => ({ tracked, instances: tracked.queued }))
    real.pending.push(
      flushWorkqueue(wq).then(() => {
        for (const { tracked, instances } of snapshot)
          if (tracked.finished + tracked.stolen < instances) throw new Error(`flush returned before ${tracked.work.name}#${instances} ended`)
      }),
    )
  }
  toString = (): string => `flush(wq${this.index})`
}

const commands = fc.commands(
  [
    fc.tuple(fc.nat(7), fc.nat(3), fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 1, max: 20 }))).map(([i, c, d]) => new Queue(i, c, d)),
    fc.nat(7).map((i) => new Cancel(i)),
    fc.integer({ min: 0, max: 15 }).map((ms) => new Advance(ms)),
    fc.nat(2).map((i) => new Flush(i)),
  ],
  { maxCommands: 40 },
)

describe('properties', () => {
  for (const strategy of ['migrate', 'pools', 'remote-charge'] as const) {
    it(`${strategy}: exactly-once-or-cancelled, no overlap, max_active, accounting, references`, async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(fc.integer({ min: 0, max: 6 }), { minLength: 8, maxLength: 8 }), commands, async (durations, cmds) => {
          const real = build(strategy, durations)
          await fc.asyncModelRun(() => ({ model: {}, real }), cmds)
          await real.env.clock.advance(1000)
          await Promise.all(real.pending)
          for (const tracked of real.works) {
            expect(tracked.work.isPending || tracked.work.isRunning).toBe(false)
            expect(tracked.runs + tracked.cancelled).toBe(tracked.queued)
            expect(tracked.overlaps).toBe(0)
          }
          for (const wq of real.wqs) expect(real.peak.get(wq) ?? 0).toBeLessThanOrEqual(wq.maxActive)
          // Accounting: each cgroup's CPU time is the sum of what its works burnt there.
          for (const path of CGROUPS) {
            const expected = real.works.reduce((sum, tracked) => sum + (tracked.burnt.get(path) ?? 0), 0)
            expect(ok(real.env.system.cpuStat(cg(path))).selfMs).toBeCloseTo(expected, 6)
          }
          expect(real.env.system.totalCgroupRefs()).toBe(0)
          for (const wq of real.wqs) expect(wq.inFlight).toBe(0)
        }),
        { numRuns: Number(process.env.WQ_RUNS ?? 60) },
      )
    })
  }
})

describe('interleavings', () => {
  it('queue, cancel and flush racing with works that wait on scheduled promises keep every rule', async () => {
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), fc.array(fc.tuple(fc.nat(3), fc.constantFrom('queue', 'cancel', 'flushWork', 'flush')), { minLength: 1, maxLength: 12 }), async (s, ops) => {
        const env = setup()
        const wq = ok(env.system.createWorkqueue({ name: 'unbound', flags: { unbound: true }, maxActive: 2 }))
        let running = 0
        let peak = 0
        const counts = Array.from({ length: 4 }, () => ({ queued: 0, cancelled: 0, stolen: 0, finished: 0, runs: 0, running: 0, overlaps: 0 }))
        const works = counts.map((count, i) =>
          work(async () => {
            count.runs++
            if (count.running++ > 0) count.overlaps++
            peak = Math.max(peak, ++running)
            await s.schedule(Promise.resolve(), `w${i} body`)
            running--
            count.running--
            count.finished++
          }),
        )
        const settled: Array<Promise<unknown>> = []
        for (const [i, op] of ops) {
          settled.push(
            s.schedule(Promise.resolve(), `${op} w${i}`).then(async () => {
              switch (op) {
                case 'queue':
                  if (ok(queueWork(wq, works[i]!))) counts[i]!.queued++
                  return
                case 'cancel': {
                  // It steals the pending instance at once, unless another cancel holds PENDING.
                  const steals = works[i]!.isPending && works[i]!.canceling === undefined
                  const cancelled = cancelWorkSync(works[i]!)
                  if (steals) counts[i]!.stolen++
                  const stolen = ok(await cancelled)
                  expect(stolen).toBe(steals)
                  if (stolen) counts[i]!.cancelled++
                  return
                }
                case 'flushWork': {
                  // The instance queued last before the flush has ended (run or stolen) on return.
                  const instances = counts[i]!.queued
                  await flushWork(works[i]!)
                  expect(counts[i]!.finished + counts[i]!.stolen).toBeGreaterThanOrEqual(instances)
                  return
                }
                case 'flush':
                  await flushWorkqueue(wq)
                  return
              }
            }),
          )
        }
        await s.waitFor(Promise.all(settled))
        for (let rounds = 0; rounds < 1000 && (wq.inFlight > 0 || s.count() > 0); rounds++) {
          await s.waitAll()
          await env.clock.advance(0)
        }
        for (const count of counts) {
          expect(count.overlaps).toBe(0)
          expect(count.runs + count.cancelled).toBe(count.queued)
        }
        expect(peak).toBeLessThanOrEqual(2)
      }),
      { numRuns: 100 },
    )
  })
})
