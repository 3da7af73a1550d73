import * as E from 'fp-ts/lib/Either.js'
import { describe, expect, it } from 'vitest'
import { Host, type AttachContext, type AttachPhase, type Subsystem } from '@cgtx/core'
import { makeHost, right, left, type CallRecord } from './fixtures.ts'

const to = (path: string, hierarchy = 'h') => ({ hierarchy, path })

describe('attach transaction', () => {
  it('calls prepareSleep, prepareSpin, commit, attach, postAttach in subsystem-id order', () => {
    const calls: Array<CallRecord> = []
    const { host } = makeHost(calls)
    right(host.mkdirSync(to('/x')))
    const task = host.spawn()
    const report = right(host.attachSync({ mode: 'process', pid: task.tid, to: to('/x') }))
    expect(report.moved).toEqual([task.tid])
    expect(report.subsystems).toEqual(['a', 'b', 'c'])
    expect(calls.map((c) => `${c.subsystem}.${c.phase}`)).toEqual([
      'a.prepareSleep', 'b.prepareSleep', 'c.prepareSleep',
      'a.prepareSpin', 'b.prepareSpin', 'c.prepareSpin',
      'a.commit', 'b.commit', 'c.commit',
      'a.attach', 'b.attach', 'c.attach',
      'a.postAttach', 'b.postAttach', 'c.postAttach',
    ])
    expect(host.cgroupOf(task, host.hierarchy('h')!).path).toBe('/x')
  })

  it('aborts in reverse order by default and calls nobody after the failing prepare', () => {
    const calls: Array<CallRecord> = []
    const { host } = makeHost(calls, { c: { failIn: 'prepareSleep' } })
    right(host.mkdirSync(to('/x')))
    const task = host.spawn()
    const error = left(host.attachSync({ mode: 'process', pid: task.tid, to: to('/x') }))
    expect(error).toMatchObject({ _tag: 'SystemError', errno: 'ENOSPC', subsystem: 'c' })
    expect(calls.map((c) => `${c.subsystem}.${c.phase}`)).toEqual([
      'a.prepareSleep', 'b.prepareSleep', 'c.prepareSleep',
      'b.abortSleep', 'a.abortSleep',
      'a.postAttach', 'b.postAttach', 'c.postAttach',
    ])
    expect(host.cgroupOf(task, host.hierarchy('h')!).path).toBe('/')
  })

  it('aborts in ascending order with abortOrder kernel', () => {
    const calls: Array<CallRecord> = []
    const { host } = makeHost(calls, { c: { failIn: 'prepareSpin' } }, { abortOrder: 'kernel' })
    right(host.mkdirSync(to('/x')))
    const task = host.spawn()
    left(host.attachSync({ mode: 'process', pid: task.tid, to: to('/x') }))
    expect(calls.filter((c) => c.phase.startsWith('abort')).map((c) => `${c.subsystem}.${c.phase}`)).toEqual([
      'a.abortSpin', 'b.abortSpin',
      'a.abortSleep', 'b.abortSleep', 'c.abortSleep',
    ])
  })

  it('calls only the subsystems whose css changes, and nobody for a no-op move', () => {
    const calls: Array<CallRecord> = []
    const { host } = makeHost(calls)
    right(host.mkdirSync(to('/y', 'g')))
    const task = host.spawn()
    const report = right(host.attachSync({ mode: 'thread', pid: task.tid, to: to('/y', 'g') }))
    expect(report.subsystems).toEqual(['d'])
    calls.length = 0
    const again = right(host.attachSync({ mode: 'thread', pid: task.tid, to: to('/y', 'g') }))
    expect(again.moved).toEqual([])
    expect(calls).toEqual([])
  })

  it('refuses a promise in the spin phase and rolls back', async () => {
    const calls: Array<CallRecord> = []
    const { host } = makeHost(calls, { b: { failIn: 'prepareSpin', how: 'sleep' } })
    right(host.mkdirSync(to('/x')))
    const task = host.spawn()
    const error = left(await host.attach({ mode: 'process', pid: task.tid, to: to('/x') })())
    expect(error).toMatchObject({ _tag: 'SystemError', fault: { kind: 'slept', subsystem: 'b', phase: 'prepareSpin' } })
    // b's stray prepareSpin resolved successfully, so it is undone too.
    expect(calls.filter((c) => c.phase === 'abortSpin').map((c) => c.subsystem)).toEqual(['b', 'a'])
    expect(host.cgroupOf(task, host.hierarchy('h')!).path).toBe('/')
  })

  it('runs sleeping callbacks through the async path', async () => {
    const calls: Array<CallRecord> = []
    const { host } = makeHost(calls, { a: { async: true } })
    right(host.mkdirSync(to('/x')))
    const task = host.spawn()
    const report = right(await host.attach({ mode: 'process', pid: task.tid, to: to('/x') })())
    expect(report.moved).toEqual([task.tid])
  })

  it('refuses a sleeping callback in attachSync and still undoes it', async () => {
    const calls: Array<CallRecord> = []
    const { host } = makeHost(calls, { a: { async: true } })
    right(host.mkdirSync(to('/x')))
    const task = host.spawn()
    const error = left(host.attachSync({ mode: 'process', pid: task.tid, to: to('/x') }))
    expect(error).toMatchObject({ fault: { kind: 'slept', subsystem: 'a' } })
    // The mutex is held until the stray settles and is aborted.
    expect(host.mutex.owner).toBeDefined()
    await new Promise((resolve) => setTimeout(resolve, 0))
    expect(host.mutex.owner).toBeUndefined()
    expect(calls.filter((c) => c.phase === 'abortSleep').map((c) => c.subsystem)).toEqual(['a'])
  })

  it('skips exiting tasks and treats an empty taskset as a no-op', () => {
    const calls: Array<CallRecord> = []
    const { host } = makeHost(calls)
    right(host.mkdirSync(to('/x')))
    const task = host.spawn()
    right(host.beginExitSync(task.tid))
    const report = right(host.attachSync({ mode: 'process', pid: task.tid, to: to('/x') }))
    expect(report).toMatchObject({ moved: [], skipped: [task.tid] })
    expect(calls).toEqual([])
  })

  it('moves every live thread of a process, wherever its threads were', () => {
    const calls: Array<CallRecord> = []
    const { host } = makeHost(calls)
    right(host.mkdirSync(to('/x')))
    right(host.mkdirSync(to('/z')))
    const leader = host.spawn()
    const t1 = right(host.forkSync(leader.tid, { thread: true }))
    const t2 = right(host.forkSync(leader.tid, { thread: true }))
    right(host.attachSync({ mode: 'thread', pid: t1.tid, to: to('/z') }))
    const report = right(host.attachSync({ mode: 'process', pid: t2.tid, to: to('/x') }))
    expect([...report.moved].sort()).toEqual([leader.tid, t1.tid, t2.tid].sort())
  })

  it('returns ESRCH for an unknown pid, ENOENT for a missing cgroup, BadArgument for junk', () => {
    const { host } = makeHost([])
    expect(left(host.attachSync({ mode: 'process', pid: 999, to: to('/') }))).toMatchObject({ errno: 'ESRCH' })
    expect(left(host.attachSync({ mode: 'process', pid: 1, to: to('/nope') }))).toMatchObject({ errno: 'ENOENT' })
    expect(left(host.attachSync({ mode: 'process', pid: -3, to: to('/') }))).toMatchObject({ _tag: 'BadArgument', field: 'request.pid', value: -3 })
    expect(left(host.attachSync({ mode: 'sideways', pid: 3, to: to('/') }))).toMatchObject({ _tag: 'BadArgument' })
    expect(left(host.attachSync({ mode: 'all', from: 'x', to: to('/') }))).toMatchObject({ _tag: 'BadArgument', field: 'request.from' })
  })

  it('refuses kernel threads that cannot change affinity with EINVAL', () => {
    const { host } = makeHost([])
    right(host.mkdirSync(to('/x')))
    const kworker = right(host.createKernelThread({ noSetAffinity: true }))
    expect(left(host.attachSync({ mode: 'thread', pid: kworker.tid, to: to('/x') }))).toMatchObject({ errno: 'EINVAL' })
  })

  it('never lets init or kthreadd exit, even through exit_group from one of their threads', () => {
    const { host } = makeHost([])
    const thread = right(host.forkSync(1, { thread: true }))
    expect(left(host.exitSync(thread.tid, { group: true }))).toMatchObject({ errno: 'ESRCH' })
    expect(left(host.beginExitSync(thread.tid, { group: true }))).toMatchObject({ errno: 'ESRCH' })
    right(host.exitSync(thread.tid))
    expect(host.task(1)!.state).toBe('running')
    expect(host.spawn().state).toBe('running')
  })

  describe('a callback that throws where it cannot fail is a recorded fault, and the phase goes on after it', () => {
    // x, y, z log every call; y throws in `phase`; for the abort phases z
    // refuses its prepareSpin, so x and y have prepareSpin to undo.
    const run = (phase: AttachPhase) => {
      const calls: Array<string> = []
      const logging = (name: string): Subsystem<null> => {
        const log = (ctx: AttachContext<null>): void => {
          calls.push(`${name}.${ctx.phase}`)
          if (name === 'y' && ctx.phase === phase) throw new Error('boom')
        }
        return {
          name,
          createState: () => null,
          prepareSleep: log,
          prepareSpin: (ctx) => {
            log(ctx)
            return name === 'z' && (phase === 'abortSpin' || phase === 'abortSleep') ? E.left(ctx.refuse('ENOSPC', 'planned')) : undefined
          },
          abortSpin: log,
          abortSleep: log,
          commit: log,
          attach: log,
          postAttach: log,
        }
      }
      const host = right(Host.create({ subsystems: ['x', 'y', 'z'].map(logging), hierarchies: [{ name: 'h', subsystems: ['x', 'y', 'z'] }] }))
      right(host.mkdirSync(to('/x')))
      const task = host.spawn()
      const result = host.attachSync({ mode: 'thread', pid: task.tid, to: to('/x') })
      const fault = host.trace.events().find((event) => event.subsystem === 'y' && event.phase === phase)
      return { calls, result, fault, path: host.cgroupOf(task, host.hierarchy('h')!).path }
    }

    it.each(['commit', 'attach', 'postAttach'] as const)('%s: the move stands and every later callback runs', (phase) => {
      const { calls, result, fault, path } = run(phase)
      expect(E.isRight(result)).toBe(true)
      expect(path).toBe('/x')
      expect(fault).toMatchObject({ outcome: 'fault', detail: 'threw: Error: boom' })
      expect(calls.filter((call) => call.endsWith(`.${phase}`))).toEqual(['x', 'y', 'z'].map((name) => `${name}.${phase}`))
      expect(calls.slice(-3)).toEqual(['x.postAttach', 'y.postAttach', 'z.postAttach'])
    })

    it.each([
      ['abortSpin', ['y.abortSpin', 'x.abortSpin']],
      ['abortSleep', ['z.abortSleep', 'y.abortSleep', 'x.abortSleep']],
    ] as const)('%s: the refusal stands and the rest of the abort runs', (phase, undone) => {
      const { calls, result, fault, path } = run(phase)
      expect(result).toEqual(E.left(expect.objectContaining({ errno: 'ENOSPC', subsystem: 'z' })))
      expect(path).toBe('/')
      expect(fault).toMatchObject({ outcome: 'fault', detail: 'threw: Error: boom' })
      expect(calls.filter((call) => call.endsWith(`.${phase}`))).toEqual(undone)
      expect(calls.slice(-3)).toEqual(['x.postAttach', 'y.postAttach', 'z.postAttach'])
    })
  })

  it('gives a subsystem a fresh privateState in every transaction (its context object is reused)', () => {
    const seen: Array<{ transaction: number; state: unknown; context: object }> = []
    const keeper: Subsystem<null> = {
      name: 'keeper',
      createState: () => null,
      prepareSleep: (ctx) => {
        seen.push({ transaction: ctx.transaction, state: ctx.privateState, context: ctx })
        ctx.privateState = `set in ${ctx.transaction}`
      },
      commit: (ctx) => void expect(ctx.privateState).toBe(`set in ${ctx.transaction}`),
    }
    const host = right(Host.create({ subsystems: [keeper], hierarchies: [{ name: 'h', subsystems: ['keeper'] }] }))
    right(host.mkdirSync(to('/x')))
    const task = host.spawn()
    right(host.attachSync({ mode: 'thread', pid: task.tid, to: to('/x') }))
    right(host.attachSync({ mode: 'thread', pid: task.tid, to: to('/') }))
    expect(seen).toHaveLength(2)
    expect(seen.map((call) => call.state)).toEqual([undefined, undefined])
    expect(seen[0]!.transaction).not.toBe(seen[1]!.transaction)
    expect(seen[0]!.context).toBe(seen[1]!.context)
  })
})
