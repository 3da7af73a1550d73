/**
 * The trace: every callback of every transaction is recorded with its
 * subsystem, phase, outcome and time; the ring keeps the most recent events
 * when it wraps; formatTimeline renders them one line each.
 */
import { describe, expect, it } from 'vitest'
import { Host, Trace, VirtualClock, formatTimeline, type Subsystem, type TraceEvent } from '@cgtx/core'
import { makeHost, recorder, right, type CallRecord } from './fixtures.ts'

const to = { hierarchy: 'h', path: '/x' }
const brief = (events: ReadonlyArray<TraceEvent>): Array<string> =>
  events.map((event) => `${event.subsystem ?? 'core'}.${event.phase}:${event.outcome}`)

describe('trace', () => {
  it('records every callback of a committed transaction, in order, with its outcome', () => {
    const calls: Array<CallRecord> = []
    const { host } = makeHost(calls)
    right(host.mkdirSync(to))
    const task = host.spawn()
    const report = right(host.attachSync({ mode: 'process', pid: task.tid, to }))
    const events = host.trace.events(report.transaction)
    expect(brief(events)).toEqual([
      'core.begin:ok',
      'a.prepareSleep:ok', 'b.prepareSleep:ok', 'c.prepareSleep:ok',
      'a.prepareSpin:ok', 'b.prepareSpin:ok', 'c.prepareSpin:ok',
      'core.commit-point:ok',
      'a.commit:ok', 'b.commit:ok', 'c.commit:ok',
      'a.attach:ok', 'b.attach:ok', 'c.attach:ok',
      'a.postAttach:ok', 'b.postAttach:ok', 'c.postAttach:ok',
      'core.end:ok',
    ])
    // Exactly the callbacks the subsystems saw.
    expect(events.filter((event) => event.subsystem !== undefined).map((event) => `${event.subsystem}.${event.phase}`)).toEqual(
      calls.map((call) => `${call.subsystem}.${call.phase}`),
    )
    expect(events.every((event) => event.transaction === report.transaction)).toBe(true)
    expect(events.at(-1)!.detail).toContain('1')
  })

  it('records begin, commit point and end for a move no callback sees, with and without a callback-less subsystem', () => {
    const bare = right(Host.create({ hierarchies: [{ name: 'h' }] }))
    const silent: Subsystem<undefined> = { name: 'silent', createState: () => undefined }
    const quiet = right(Host.create({ subsystems: [silent], hierarchies: [{ name: 'h', subsystems: ['silent'] }] }))
    for (const host of [bare, quiet]) {
      right(host.mkdirSync(to))
      const task = host.spawn()
      const report = right(host.attachSync({ mode: 'process', pid: task.tid, to }))
      expect(report.subsystems).toEqual(host === quiet ? ['silent'] : [])
      const events = host.trace.events(report.transaction)
      expect(brief(events)).toEqual(['core.begin:ok', 'core.commit-point:ok', 'core.end:ok'])
      expect(events.at(-1)!.detail).toBe('moved 1')
      expect(task.cssSet.cgroup(0).path).toBe('/x')
      // The locks are free for the next transaction, here a move back.
      right(host.attachSync({ mode: 'process', pid: task.tid, to: { hierarchy: 'h', path: '/' } }))
    }
  })

  it('records refusals as failed and plugin faults as fault, with the errno or the fault', () => {
    const calls: Array<CallRecord> = []
    const { host, subsystems } = makeHost(calls, { b: { failIn: 'prepareSleep' } })
    right(host.mkdirSync(to))
    const task = host.spawn()
    host.attachSync({ mode: 'process', pid: task.tid, to })
    const refused = host.trace.events().filter((event) => event.transaction === host.trace.events().at(-1)!.transaction)
    expect(brief(refused)).toEqual([
      'core.begin:ok',
      'a.prepareSleep:ok', 'b.prepareSleep:failed',
      'a.abortSleep:ok',
      'a.postAttach:ok', 'b.postAttach:ok', 'c.postAttach:ok',
      'core.end:failed',
    ])
    expect(refused.find((event) => event.outcome === 'failed')!.detail).toContain('ENOSPC')

    subsystems[1]!.plan = { failIn: 'prepareSpin', how: 'throw' }
    host.attachSync({ mode: 'process', pid: task.tid, to })
    const faulted = host.trace.events(host.trace.events().at(-1)!.transaction)
    const fault = faulted.find((event) => event.subsystem === 'b' && event.phase === 'prepareSpin')!
    expect(fault.outcome).toBe('fault')
    expect(fault.detail).toContain('planned throw')
    expect(brief(faulted).filter((line) => line.includes('abort'))).toEqual(['a.abortSpin:ok', 'c.abortSleep:ok', 'b.abortSleep:ok', 'a.abortSleep:ok'])
    expect(faulted.at(-1)!.outcome).toBe('fault')
  })

  it('records a throwing commit as a fault and still commits the rest', () => {
    const calls: Array<CallRecord> = []
    const base = recorder('a', calls)
    const clumsy: Subsystem<{ tasks: number }> = {
      ...base,
      commit: () => {
        throw new Error('oops in commit')
      },
    }
    const host = right(Host.create({ subsystems: [clumsy, recorder('b', calls)], hierarchies: [{ name: 'h', subsystems: ['a', 'b'] }] }))
    right(host.mkdirSync(to))
    const task = host.spawn()
    const report = right(host.attachSync({ mode: 'thread', pid: task.tid, to }))
    const events = host.trace.events(report.transaction)
    expect(events.find((event) => event.subsystem === 'a' && event.phase === 'commit')).toMatchObject({ outcome: 'fault' })
    expect(events.find((event) => event.subsystem === 'a' && event.phase === 'commit')!.detail).toContain('oops in commit')
    expect(events.find((event) => event.subsystem === 'b' && event.phase === 'commit')).toMatchObject({ outcome: 'ok' })
    expect(events.at(-1)).toMatchObject({ phase: 'end', outcome: 'ok' })
    expect(host.cgroupOf(task, host.hierarchy('h')!).path).toBe('/x')
  })

  it('records a promise from commit and a throw from attach as faults; the transaction still commits', async () => {
    const odd: Subsystem<null> = {
      name: 'odd',
      createState: () => null,
      commit: () => Promise.resolve() as never,
      attach: () => {
        throw new Error('attach blew up')
      },
    }
    const host = right(Host.create({ subsystems: [odd], hierarchies: [{ name: 'h', subsystems: ['odd'] }] }))
    right(host.mkdirSync(to))
    const task = host.spawn()
    const report = right(await host.attach({ mode: 'thread', pid: task.tid, to })())
    const events = host.trace.events(report.transaction)
    expect(events.find((event) => event.phase === 'commit')).toMatchObject({ subsystem: 'odd', outcome: 'fault' })
    expect(events.find((event) => event.phase === 'attach')).toMatchObject({ subsystem: 'odd', outcome: 'fault' })
    expect(events.find((event) => event.phase === 'attach')!.detail).toContain('attach blew up')
    expect(events.at(-1)).toMatchObject({ phase: 'end', outcome: 'ok' })
    expect(host.cgroupOf(task, host.hierarchy('h')!).path).toBe('/x')
  })

  it('stamps events with the host clock, including after a callback slept', async () => {
    const clock = new VirtualClock(1000)
    const slow: Subsystem<null> = {
      name: 's',
      createState: () => null,
      prepareSleep: () => clock.sleep(5),
    }
    const host = right(Host.create({ subsystems: [slow], hierarchies: [{ name: 'h', subsystems: ['s'] }], clock }))
    right(host.mkdirSync(to))
    const task = host.spawn()
    const pending = host.attach({ mode: 'thread', pid: task.tid, to })()
    await clock.advance(5)
    const report = right(await pending)
    const events = host.trace.events(report.transaction)
    expect(events[0]!.time).toBe(1000)
    expect(events.at(-1)!.time).toBe(1005)
    expect(events.find((event) => event.phase === 'prepareSleep')!.time).toBe(1005)
    const timeline = formatTimeline(events)
    expect(timeline.split('\n')[0]).toMatch(/^\s*\+0\.000ms {2}tx\d+ {2}·core/)
    expect(timeline).toContain('+5.000ms')
  })

  it('keeps the most recent events when the ring wraps', () => {
    const { host } = makeHost([], {}, { traceCapacity: 16 })
    right(host.mkdirSync(to))
    const task = host.spawn()
    const transactions: Array<number> = []
    for (let i = 0; i < 5; i++) {
      transactions.push(right(host.attachSync({ mode: 'thread', pid: task.tid, to: { hierarchy: 'h', path: i % 2 === 0 ? '/x' : '/' } })).transaction)
    }
    expect(host.trace.recorded).toBe(5 * 18)
    const events = host.trace.events()
    expect(events).toHaveLength(16)
    expect(events.map((event) => event.seq)).toEqual(Array.from({ length: 16 }, (_, i) => 5 * 18 - 16 + i))
    expect(events.every((event) => event.transaction === transactions[4])).toBe(true)
    expect(events.at(-1)).toMatchObject({ phase: 'end', outcome: 'ok' })
    expect(host.trace.events(transactions[0])).toEqual([])
  })

  it('keeps its capacity rounded up to a power of two', () => {
    const trace = new Trace(new VirtualClock(), 20)
    expect(trace.capacity).toBe(32)
    for (let i = 0; i < 40; i++) trace.record(i, 's', 'commit', 'ok')
    expect(trace.events().map((event) => event.transaction)).toEqual(Array.from({ length: 32 }, (_, i) => i + 8))
  })

  it('can be paused and cleared', () => {
    const trace = new Trace(new VirtualClock(), 16)
    trace.record(1, 'a', 'prepareSleep', 'ok')
    trace.enabled = false
    trace.record(1, 'a', 'commit', 'ok')
    expect(trace.events().map((event) => event.phase)).toEqual(['prepareSleep'])
    trace.enabled = true
    trace.clear()
    expect(trace.events()).toEqual([])
    expect(trace.recorded).toBe(0)
  })

  it('leaves out kernel threads\' moves unless asked, and they still take transaction numbers', () => {
    const { host } = makeHost([])
    right(host.mkdirSync(to))
    const worker = right(host.createKernelThread({ comm: 'kworker/u8:0' }))
    const user = host.spawn()
    const before = host.trace.recorded
    const unrecorded = right(host.attachTaskSync(worker, right(host.cgroup(to)), 'process'))
    // The move happened, through every subsystem, but nothing was recorded.
    expect(unrecorded.moved).toEqual([worker.tid])
    expect(unrecorded.subsystems).toEqual(['a', 'b', 'c'])
    expect(host.trace.recorded).toBe(before)
    const recorded = right(host.attachSync({ mode: 'process', pid: user.tid, to }))
    expect(recorded.transaction).toBe(unrecorded.transaction + 1)
    expect(host.trace.events(recorded.transaction).length).toBeGreaterThan(0)

    // Moving all of a cgroup's tasks is recorded, kernel threads among them.
    const all = right(host.attachSync({ mode: 'all', from: '/x', to: { hierarchy: 'h', path: '/' } }))
    expect(all.moved).toContain(worker.tid)
    expect(brief(host.trace.events(all.transaction))).toContain('core.commit-point:ok')
    right(host.attachTaskSync(worker, right(host.cgroup(to)), 'process'))

    host.trace.kernelThreads = true
    const back = right(host.attachTaskSync(worker, host.hierarchies[0]!.root, 'process'))
    expect(brief(host.trace.events(back.transaction))).toContain('core.commit-point:ok')
    expect(brief(host.trace.events(back.transaction))).toContain('a.attach:ok')
  })

  it('formatTimeline renders one line per event with subsystem, phase, mark and detail', () => {
    const clock = new VirtualClock()
    const trace = new Trace(clock, 16)
    trace.tick()
    trace.record(7, undefined, 'begin', 'ok', 'attach thread 5 to h:/x')
    trace.record(7, 'pids', 'prepareSleep', 'ok')
    trace.record(7, 'cpuset', 'prepareSpin', 'failed', 'ENOSPC')
    trace.record(7, 'memory', 'abortSleep', 'fault', 'threw: boom')
    trace.record(7, undefined, 'end', 'failed', 'ENOSPC')
    const lines = formatTimeline(trace.events()).split('\n')
    expect(lines).toHaveLength(5)
    expect(lines[0]).toBe('   +0.000ms  tx7  ·core      begin        ✓  attach thread 5 to h:/x')
    expect(lines[1]).toBe('   +0.000ms  tx7  pids       prepareSleep ✓')
    expect(lines[2]).toBe('   +0.000ms  tx7  cpuset     prepareSpin  ✗  ENOSPC')
    expect(lines[3]).toBe('   +0.000ms  tx7  memory     abortSleep   ‼  threw: boom')
    expect(formatTimeline([])).toBe('')
  })
})

