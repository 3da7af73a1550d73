import * as E from 'fp-ts/lib/Either.js'
import { describe, expect, it } from 'vitest'
import { makeHost, left, right, type CallRecord } from './fixtures.ts'

describe('attachTask (objects instead of pids and paths)', () => {
  it('runs the same transaction as attach, with the same calls and result', () => {
    const byPath: Array<CallRecord> = []
    const byObject: Array<CallRecord> = []
    const one = makeHost(byPath).host
    const two = makeHost(byObject).host
    for (const host of [one, two]) {
      right(host.mkdirSync({ hierarchy: 'h', path: '/x' }))
      right(host.mkdirSync({ hierarchy: 'g', path: '/y' }))
    }
    const a = one.spawn()
    const b = two.spawn()
    right(one.forkSync(a.tid, { thread: true }))
    right(two.forkSync(b.tid, { thread: true }))
    const viaPaths = right(one.attachSync({ mode: 'process', pid: a.tid, to: [{ hierarchy: 'h', path: '/x' }, { hierarchy: 'g', path: '/y' }] }))
    const viaObjects = right(two.attachTaskSync(b, [two.hierarchy('h')!.lookup('/x')!, two.hierarchy('g')!.lookup('/y')!], 'process'))
    expect(viaObjects).toEqual(viaPaths)
    expect(byObject.map((c) => `${c.subsystem}.${c.phase}`)).toEqual(byPath.map((c) => `${c.subsystem}.${c.phase}`))
  })

  it('refuses objects of another host, a bad mode and two destinations in one hierarchy', () => {
    const { host } = makeHost([])
    const other = makeHost([]).host
    const task = host.spawn()
    const root = host.hierarchy('h')!.root
    expect(left(host.attachTaskSync(other.spawn(), root))).toMatchObject({ _tag: 'BadArgument', field: 'task' })
    expect(left(host.attachTaskSync(task, other.hierarchy('h')!.root))).toMatchObject({ _tag: 'BadArgument', field: 'to' })
    expect(left(host.attachTaskSync(task, [root, root]))).toMatchObject({ _tag: 'BadArgument', field: 'to.1' })
    expect(left(host.attachTaskSync(task, [root, other.hierarchy('h')!.root]))).toMatchObject({ _tag: 'BadArgument', field: 'to.1' })
    expect(left(host.attachTaskSync(task, []))).toMatchObject({ _tag: 'BadArgument', field: 'to' })
    expect(left(host.attachTaskSync(task, root, 'all'))).toMatchObject({ _tag: 'BadArgument', field: 'mode' })
    expect(left(host.attachTaskSync({ tid: task.tid }, root))).toMatchObject({ _tag: 'BadArgument', field: 'task' })
  })

  it('answers ENODEV for a removed cgroup and ESRCH for a reaped task', async () => {
    const { host } = makeHost([])
    const gone = right(host.mkdirSync({ hierarchy: 'h', path: '/gone' }))
    right(host.rmdirSync({ hierarchy: 'h', path: '/gone' }))
    const task = host.spawn()
    expect(left(host.attachTaskSync(task, gone))).toMatchObject({ errno: 'ENODEV' })
    right(host.exitSync(task.tid))
    right(host.reap(task.tid))
    const result = await host.attachTask(task, host.hierarchy('h')!.root)()
    expect(E.isLeft(result) && result.left).toMatchObject({ errno: 'ESRCH' })
  })
})
