/**
 * The virtual cgroupfs answers as the kernel does (values, formats, ordering
 * and errnos), on a v1 host and on a v2 host. Expected values follow
 * docs/kernel-observations.md (probed on the real kernel) and the kernel
 * selftests it names.
 */
import * as E from 'fp-ts/lib/Either.js'
import { describe, expect, it } from 'vitest'
import { Host, VirtualCgroupFs, type CgtxError } from '@cgtx/core'
import { left, observe, recorder, right, type CallRecord } from './fixtures.ts'

const errnoOf = (result: E.Either<CgtxError, unknown>): string =>
  E.isRight(result) ? 'ok' : result.left._tag === 'SystemError' ? result.left.errno : `BadArgument(${result.left.field})`

const v1 = () => {
  const calls: Array<CallRecord> = []
  const host = right(Host.create({ subsystems: [recorder('a', calls), recorder('b', calls)], hierarchies: [{ name: 'h', subsystems: ['a', 'b'] }] }))
  return { host, fs: new VirtualCgroupFs(host), calls }
}

// p is a threaded controller, m a domain one.
const v2 = () => {
  const calls: Array<CallRecord> = []
  const host = right(
    Host.create({
      subsystems: [{ ...recorder('p', calls), threaded: true }, recorder('m', calls)],
      hierarchies: [{ name: 'u', version: 'v2', subsystems: ['p', 'm'] }],
    }),
  )
  return { host, fs: new VirtualCgroupFs(host), calls }
}

describe('directories', () => {
  it('mkdir answers EEXIST, ENOENT and EAGAIN like the kernel', () => {
    const { fs } = v1()
    expect(errnoOf(fs.mkdirSync('/h/a'))).toBe('ok')
    expect(errnoOf(fs.mkdirSync('/h/a'))).toBe('EEXIST')
    expect(errnoOf(fs.mkdirSync('/h/a/tasks'))).toBe('EEXIST')
    expect(errnoOf(fs.mkdirSync('/h/cgroup.procs'))).toBe('EEXIST')
    expect(errnoOf(fs.mkdirSync('/h'))).toBe('EEXIST')
    expect(errnoOf(fs.mkdirSync('/h/nope/b'))).toBe('ENOENT')
    expect(errnoOf(fs.mkdirSync('/h/x y'))).toBe('ok')
    expect(errnoOf(fs.mkdirSync('/h/nl\nx'))).toBe('EINVAL')
    expect(errnoOf(fs.mkdirSync('/h/a/nl\nx'))).toBe('EINVAL')
    expect(errnoOf(fs.mkdirSync('/h/nope/nl\nx'))).toBe('ENOENT')
  })

  it('an attach that waited while its destination was removed fails with ENODEV', async () => {
    const { host } = v1()
    right(host.mkdirSync({ hierarchy: 'h', path: '/x' }))
    const task = host.spawn()
    const holder = {}
    right(E.right(host.mutex.tryAcquire(holder)))
    const removed = host.rmdir({ hierarchy: 'h', path: '/x' })()
    const attached = host.attach({ mode: 'process', pid: task.tid, to: { hierarchy: 'h', path: '/x' } })()
    host.mutex.release(holder)
    right(await removed)
    expect(left(await attached)).toMatchObject({ errno: 'ENODEV' })
    expect(host.cgroupOf(task, host.hierarchy('h')!).path).toBe('/')
  })

  it('rmdir refuses populated cgroups and cgroups with children (EBUSY), files (ENOTDIR), the root (EBUSY)', () => {
    const { host, fs } = v1()
    right(fs.mkdirSync('/h/a'))
    right(fs.mkdirSync('/h/a/b'))
    right(fs.mkdirSync('/h/c'))
    const task = host.spawn()
    right(fs.writeSync('/h/a/b/cgroup.procs', `${task.tid}`))
    expect(errnoOf(fs.rmdirSync('/h/a/b'))).toBe('EBUSY')
    expect(errnoOf(fs.rmdirSync('/h/a'))).toBe('EBUSY')
    right(fs.writeSync('/h/cgroup.procs', `${task.tid}`))
    expect(errnoOf(fs.rmdirSync('/h/a'))).toBe('EBUSY')
    expect(errnoOf(fs.rmdirSync('/h/a/tasks'))).toBe('ENOTDIR')
    expect(errnoOf(fs.rmdirSync('/h'))).toBe('EBUSY')
    expect(errnoOf(fs.rmdirSync('/h/nope'))).toBe('ENOENT')
    right(fs.rmdirSync('/h/a/b'))
    right(fs.rmdirSync('/h/a'))
    expect([...host.hierarchy('h')!.root.children.keys()]).toEqual(['c'])
  })

  it('rmdir of a cgroup holding only a zombie succeeds; the zombie is counted as dying', () => {
    const { host, fs } = v2()
    right(fs.mkdirSync('/u/z'))
    const task = host.spawn()
    right(fs.writeSync('/u/z/cgroup.procs', `${task.tid}`))
    right(host.exitSync(task.tid))
    expect(right(fs.readSync('/u/z/cgroup.procs'))).toBe('')
    expect(right(fs.readSync('/u/z/cgroup.events'))).toBe('populated 0\nfrozen 0\n')
    right(fs.rmdirSync('/u/z'))
    expect(right(fs.readSync('/u/cgroup.stat'))).toContain('nr_dying_descendants 1\n')
    right(host.reap(task.tid))
    expect(right(fs.readSync('/u/cgroup.stat'))).toContain('nr_dying_descendants 0\n')
  })
})

describe('task listings and PID writes', () => {
  it('v1: tasks and cgroup.procs sorted, procs de-duplicated, zombies absent, exiting tasks present', () => {
    const { host, fs } = v1()
    right(fs.mkdirSync('/h/a'))
    const [s1, s2, s3] = [host.spawn(), host.spawn(), host.spawn()]
    for (const task of [s3, s1, s2]) right(fs.writeSync('/h/a/cgroup.procs', `${task.tid}`))
    const t1 = right(host.forkSync(s1.tid, { thread: true }))
    const zombie = right(host.forkSync(s2.tid))
    right(host.exitSync(zombie.tid))
    right(host.beginExitSync(s3.tid))
    expect(right(fs.readSync('/h/a/cgroup.procs'))).toBe(`${s1.tid}\n${s2.tid}\n${s3.tid}\n`)
    expect(right(fs.readSync('/h/a/tasks'))).toBe([s1.tid, s2.tid, s3.tid, t1.tid].sort((x, y) => x - y).map((tid) => `${tid}\n`).join(''))
    expect(errnoOf(fs.readSync('/h/a/cgroup.threads'))).toBe('ENOENT')
  })

  it('v1: a non-leader tid in cgroup.procs moves the process; in tasks only the thread', () => {
    const { host, fs } = v1()
    right(fs.mkdirSync('/h/th1'))
    right(fs.mkdirSync('/h/th2'))
    const leader = host.spawn()
    const [t1, t2] = [right(host.forkSync(leader.tid, { thread: true })), right(host.forkSync(leader.tid, { thread: true }))]
    right(fs.writeSync('/h/th2/cgroup.procs', `${t1.tid}`))
    expect(right(fs.readSync('/h/th2/tasks'))).toBe(`${leader.tid}\n${t1.tid}\n${t2.tid}\n`)
    right(fs.writeSync('/h/th1/tasks', `${t2.tid}`))
    expect(right(fs.readSync('/h/th1/tasks'))).toBe(`${t2.tid}\n`)
    expect(right(fs.readSync('/h/th1/cgroup.procs'))).toBe(`${leader.tid}\n`)
    expect(right(fs.readSync('/h/th2/cgroup.procs'))).toBe(`${leader.tid}\n`)
  })

  it('parses PID writes like the kernel: strstrip, base 0, EINVAL for junk, ESRCH for unknown, empty write a no-op', () => {
    const { host, fs } = v1()
    right(fs.mkdirSync('/h/w'))
    const task = host.spawn()
    const before = observe(host)
    for (const junk of ['abc', '-1', '\n', ' ', `${task.tid} ${task.tid}`, `${task.tid}\n${task.tid}`, '2147483648', '99999999999'])
      expect(errnoOf(fs.writeSync('/h/w/cgroup.procs', junk)), JSON.stringify(junk)).toBe('EINVAL')
    expect(errnoOf(fs.writeSync('/h/w/cgroup.procs', '4000000'))).toBe('ESRCH')
    expect(errnoOf(fs.writeSync('/h/w/tasks', '4000000'))).toBe('ESRCH')
    expect(errnoOf(fs.writeSync('/h/w/cgroup.procs', ''))).toBe('ok')
    expect(observe(host)).toEqual(before)
    for (const good of [`  ${task.tid} `, `${task.tid}\n`, `${task.tid}\t`, `+${task.tid}`, `0x${task.tid.toString(16)}`, `0${task.tid.toString(8)}`]) {
      right(fs.writeSync('/h/cgroup.procs', `${task.tid}`))
      expect(errnoOf(fs.writeSync('/h/w/cgroup.procs', good)), JSON.stringify(good)).toBe('ok')
      expect(right(fs.readSync('/h/w/cgroup.procs'))).toBe(`${task.tid}\n`)
    }
  })

  it('a zombie pid write succeeds and moves nothing; a kernel thread without affinity is EINVAL', () => {
    const { host, fs } = v1()
    right(fs.mkdirSync('/h/w'))
    const zombie = host.spawn()
    right(host.exitSync(zombie.tid))
    right(fs.writeSync('/h/w/cgroup.procs', `${zombie.tid}`))
    right(fs.writeSync('/h/w/tasks', `${zombie.tid}`))
    expect(right(fs.readSync('/h/w/tasks'))).toBe('')
    const kworker = right(host.createKernelThread({ noSetAffinity: true }))
    expect(errnoOf(fs.writeSync('/h/w/cgroup.procs', `${kworker.tid}`))).toBe('EINVAL')
    expect(errnoOf(fs.writeSync('/h/w/tasks', `${kworker.tid}`))).toBe('EINVAL')
  })

  it('v2: listings in migration order; cgroup.procs lists a process where its (even zombie) leader is', () => {
    const { host, fs } = v2()
    right(fs.mkdirSync('/u/zl1'))
    right(fs.mkdirSync('/u/zl2'))
    const [s1, s2, s3] = [host.spawn(), host.spawn(), host.spawn()]
    for (const task of [s3, s1, s2]) right(fs.writeSync('/u/zl1/cgroup.procs', `${task.tid}`))
    expect(right(fs.readSync('/u/zl1/cgroup.procs'))).toBe(`${s3.tid}\n${s1.tid}\n${s2.tid}\n`)
    expect(right(fs.readSync('/u/zl1/cgroup.threads'))).toBe(`${s3.tid}\n${s1.tid}\n${s2.tid}\n`)
    // A process whose leader exited while its threads live on.
    const leader = host.spawn()
    const [h1, h2] = [right(host.forkSync(leader.tid, { thread: true })), right(host.forkSync(leader.tid, { thread: true }))]
    right(fs.writeSync('/u/zl1/cgroup.procs', `${leader.tid}`))
    right(host.exitSync(leader.tid))
    right(fs.writeSync('/u/zl2/cgroup.procs', `${leader.tid}`))
    expect(right(fs.readSync('/u/zl2/cgroup.threads'))).toBe(`${h1.tid}\n${h2.tid}\n`)
    expect(right(fs.readSync('/u/zl2/cgroup.procs'))).toBe('')
    expect(right(fs.readSync('/u/zl1/cgroup.procs'))).toBe(`${s3.tid}\n${s1.tid}\n${s2.tid}\n${leader.tid}\n`)
    expect(errnoOf(fs.readSync('/u/zl1/tasks'))).toBe('ENOENT')
  })
})

describe('v2 threaded mode', () => {
  it('cgroup.type: threaded, domain threaded, domain invalid; EINVAL for other values', () => {
    const { fs } = v2()
    for (const path of ['/u/tp', '/u/tp/t', '/u/tp/d']) right(fs.mkdirSync(path))
    expect(right(fs.readSync('/u/tp/cgroup.type'))).toBe('domain\n')
    expect(errnoOf(fs.readSync('/u/cgroup.type'))).toBe('ENOENT')
    right(fs.writeSync('/u/tp/t/cgroup.type', 'threaded'))
    expect(right(fs.readSync('/u/tp/t/cgroup.type'))).toBe('threaded\n')
    expect(right(fs.readSync('/u/tp/cgroup.type'))).toBe('domain threaded\n')
    expect(right(fs.readSync('/u/tp/d/cgroup.type'))).toBe('domain invalid\n')
    // A new child of a threaded cgroup is domain invalid until made threaded.
    right(fs.mkdirSync('/u/tp/t/sub'))
    expect(right(fs.readSync('/u/tp/t/sub/cgroup.type'))).toBe('domain invalid\n')
    right(fs.writeSync('/u/tp/t/sub/cgroup.type', ' threaded\n'))
    expect(right(fs.readSync('/u/tp/t/sub/cgroup.type'))).toBe('threaded\n')
    for (const value of ['domain', 'domain threaded', 'domain invalid', 'THREADED', '\n'])
      expect(errnoOf(fs.writeSync('/u/tp/t/cgroup.type', value)), value).toBe('EINVAL')
    expect(errnoOf(fs.writeSync('/u/tp/t/cgroup.type', 'threaded'))).toBe('ok')
    expect(errnoOf(fs.writeSync('/u/tp/t/cgroup.type', ''))).toBe('ok')
  })

  it('refuses threaded on a populated cgroup and beside a populated domain sibling (EOPNOTSUPP)', () => {
    const { host, fs } = v2()
    for (const path of ['/u/popr', '/u/popr/popd', '/u/popr/popd/k', '/u/popr/sib']) right(fs.mkdirSync(path))
    right(fs.writeSync('/u/popr/popd/cgroup.procs', `${host.spawn().tid}`))
    expect(errnoOf(fs.writeSync('/u/popr/popd/cgroup.type', 'threaded'))).toBe('EOPNOTSUPP')
    expect(errnoOf(fs.writeSync('/u/popr/sib/cgroup.type', 'threaded'))).toBe('EOPNOTSUPP')
    right(fs.writeSync('/u/popr/popd/k/cgroup.type', 'threaded'))
    expect(right(fs.readSync('/u/popr/popd/cgroup.type'))).toBe('domain threaded\n')
  })

  it('refuses threaded with domain controllers enabled (EOPNOTSUPP)', () => {
    const { fs } = v2()
    right(fs.mkdirSync('/u/a'))
    right(fs.mkdirSync('/u/a/b'))
    right(fs.writeSync('/u/cgroup.subtree_control', '+m'))
    right(fs.writeSync('/u/a/cgroup.subtree_control', '+m'))
    expect(errnoOf(fs.writeSync('/u/a/cgroup.type', 'threaded'))).toBe('EOPNOTSUPP')
  })

  it('domain invalid refuses tasks; threaded cgroup.procs reads EOPNOTSUPP; threads stay in their domain', () => {
    const { host, fs } = v2()
    for (const path of ['/u/tp', '/u/tp/t', '/u/tp/t2', '/u/tp/d', '/u/tp2', '/u/tp2/x']) right(fs.mkdirSync(path))
    right(fs.writeSync('/u/tp/t/cgroup.type', 'threaded'))
    right(fs.writeSync('/u/tp/t2/cgroup.type', 'threaded'))
    right(fs.writeSync('/u/tp2/x/cgroup.type', 'threaded'))
    const process = host.spawn()
    const [h1, h2] = [right(host.forkSync(process.tid, { thread: true })), right(host.forkSync(process.tid, { thread: true }))]
    const before = observe(host)
    expect(errnoOf(fs.writeSync('/u/tp/d/cgroup.procs', `${process.tid}`))).toBe('EOPNOTSUPP')
    expect(errnoOf(fs.writeSync('/u/tp/d/cgroup.threads', `${h1.tid}`))).toBe('EOPNOTSUPP')
    // The process is in the root's domain: its threads cannot go to tp's threaded children.
    expect(errnoOf(fs.writeSync('/u/tp/t/cgroup.threads', `${h1.tid}`))).toBe('EOPNOTSUPP')
    expect(observe(host)).toEqual(before)
    right(fs.writeSync('/u/tp/cgroup.procs', `${process.tid}`))
    right(fs.writeSync('/u/tp/t/cgroup.threads', `${h1.tid}`))
    right(fs.writeSync('/u/tp/t2/cgroup.threads', `${h2.tid}`))
    expect(right(fs.readSync('/u/tp/t/cgroup.threads'))).toBe(`${h1.tid}\n`)
    expect(errnoOf(fs.readSync('/u/tp/t/cgroup.procs'))).toBe('EOPNOTSUPP')
    expect(right(fs.readSync('/u/tp/cgroup.procs'))).toBe(`${process.tid}\n`)
    for (const path of ['/u/tp2/x', '/u/tp2', '/u'])
      expect(errnoOf(fs.writeSync(`${path}/cgroup.threads`, `${h2.tid}`)), path).toBe('EOPNOTSUPP')
    // A whole process may move into a threaded cgroup of another domain.
    right(fs.writeSync('/u/tp2/x/cgroup.procs', `${h2.tid}`))
    expect(right(fs.readSync('/u/tp2/x/cgroup.threads')).split('\n').filter(Boolean).map(Number).sort((a, b) => a - b)).toEqual(
      [process.tid, h1.tid, h2.tid].sort((a, b) => a - b),
    )
    expect(errnoOf(fs.writeSync('/u/tp2/x/cgroup.kill', '1'))).toBe('EOPNOTSUPP')
  })
})

describe('v2 controllers', () => {
  it('cgroup.controllers and cgroup.subtree_control: top-down, EINVAL, ENOENT, EBUSY, all or nothing', () => {
    const { fs } = v2()
    right(fs.mkdirSync('/u/a'))
    right(fs.mkdirSync('/u/a/b'))
    expect(right(fs.readSync('/u/cgroup.controllers'))).toBe('p m\n')
    expect(right(fs.readSync('/u/a/cgroup.controllers'))).toBe('')
    expect(right(fs.readSync('/u/a/cgroup.subtree_control'))).toBe('')
    expect(errnoOf(fs.writeSync('/u/a/cgroup.subtree_control', '+p'))).toBe('ENOENT')
    expect(errnoOf(fs.writeSync('/u/cgroup.subtree_control', 'p'))).toBe('EINVAL')
    expect(errnoOf(fs.writeSync('/u/cgroup.subtree_control', '+bogus'))).toBe('EINVAL')
    expect(errnoOf(fs.writeSync('/u/cgroup.subtree_control', '+p +bogus'))).toBe('EINVAL')
    expect(right(fs.readSync('/u/cgroup.subtree_control'))).toBe('')
    for (const value of ['', ' ', '\n', '-p', '+p -p']) expect(errnoOf(fs.writeSync('/u/cgroup.subtree_control', value)), JSON.stringify(value)).toBe('ok')
    expect(right(fs.readSync('/u/cgroup.subtree_control'))).toBe('')
    right(fs.writeSync('/u/cgroup.subtree_control', '+m +p'))
    expect(right(fs.readSync('/u/cgroup.subtree_control'))).toBe('p m\n')
    expect(right(fs.readSync('/u/a/cgroup.controllers'))).toBe('p m\n')
    right(fs.writeSync('/u/a/cgroup.subtree_control', '+p'))
    expect(right(fs.readSync('/u/a/b/cgroup.controllers'))).toBe('p\n')
    expect(left(fs.writeSync('/u/cgroup.subtree_control', '-p'))).toMatchObject({ errno: 'EBUSY', operation: 'write u:/cgroup.subtree_control' })
    right(fs.writeSync('/u/a/cgroup.subtree_control', '-p'))
    right(fs.writeSync('/u/cgroup.subtree_control', '-p'))
    expect(right(fs.readSync('/u/cgroup.subtree_control'))).toBe('m\n')
  })

  it('no internal processes: EBUSY enabling a domain controller in a populated cgroup and attaching under one', () => {
    const { host, fs } = v2()
    right(fs.mkdirSync('/u/a'))
    right(fs.mkdirSync('/u/a/b'))
    right(fs.writeSync('/u/cgroup.subtree_control', '+m +p'))
    const task = host.spawn()
    right(fs.writeSync('/u/a/cgroup.procs', `${task.tid}`))
    expect(errnoOf(fs.writeSync('/u/a/cgroup.subtree_control', '+m'))).toBe('EBUSY')
    // A threaded controller alone is allowed in a populated cgroup.
    right(fs.writeSync('/u/a/cgroup.subtree_control', '+p'))
    right(fs.writeSync('/u/a/b/cgroup.procs', `${task.tid}`))
    right(fs.writeSync('/u/a/cgroup.subtree_control', '+m'))
    const before = observe(host)
    expect(errnoOf(fs.writeSync('/u/a/cgroup.procs', `${task.tid}`))).toBe('EBUSY')
    expect(observe(host)).toEqual(before)
    // The root is exempt.
    right(fs.writeSync('/u/cgroup.procs', `${task.tid}`))
  })

  it('enabling a controller re-homes the tasks below: their css changes and only that subsystem is called', () => {
    const { host, fs, calls } = v2()
    right(fs.mkdirSync('/u/a'))
    right(fs.writeSync('/u/cgroup.subtree_control', '+p'))
    const task = host.spawn()
    right(fs.writeSync('/u/a/cgroup.procs', `${task.tid}`))
    const a = host.hierarchy('u')!.root.children.get('a')!
    const [p, m] = [host.subsystemId('p'), host.subsystemId('m')]
    expect(task.cssSet.css[m]!.cgroup.isRoot).toBe(true)
    const pBefore = task.cssSet.css[p]
    calls.length = 0
    right(fs.writeSync('/u/cgroup.subtree_control', '+m'))
    expect(task.cssSet.css[m]!.cgroup).toBe(a)
    expect(task.cssSet.css[p]).toBe(pBefore)
    expect(new Set(calls.map((call) => call.subsystem))).toEqual(new Set(['m']))
    expect(calls.filter((call) => call.phase === 'commit')).toHaveLength(1)
    // Disabling moves them back to the root's css.
    right(fs.writeSync('/u/cgroup.subtree_control', '-m'))
    expect(task.cssSet.css[m]!.cgroup.isRoot).toBe(true)
  })
})

describe('v2 limits, events, stat, kill', () => {
  it('cgroup.max.depth and cgroup.max.descendants: parse, ERANGE, EINVAL, and EAGAIN on mkdir', () => {
    const { fs } = v2()
    right(fs.mkdirSync('/u/md'))
    right(fs.mkdirSync('/u/mx'))
    expect(right(fs.readSync('/u/md/cgroup.max.depth'))).toBe('max\n')
    for (const [value, answer] of [['-1', 'ERANGE'], ['abc', 'EINVAL'], ['2147483648', 'ERANGE'], ['', 'ok']] as const)
      expect(errnoOf(fs.writeSync('/u/md/cgroup.max.depth', value)), value).toBe(answer)
    right(fs.writeSync('/u/md/cgroup.max.depth', '2147483647'))
    expect(right(fs.readSync('/u/md/cgroup.max.depth'))).toBe('max\n')
    right(fs.writeSync('/u/md/cgroup.max.depth', ' 1\n'))
    expect(right(fs.readSync('/u/md/cgroup.max.depth'))).toBe('1\n')
    right(fs.mkdirSync('/u/md/a'))
    expect(errnoOf(fs.mkdirSync('/u/md/a/b'))).toBe('EAGAIN')
    right(fs.writeSync('/u/md/cgroup.max.depth', '0'))
    expect(errnoOf(fs.mkdirSync('/u/md/c'))).toBe('EAGAIN')
    right(fs.writeSync('/u/md/cgroup.max.depth', 'max'))
    right(fs.mkdirSync('/u/md/a/b'))

    expect(errnoOf(fs.writeSync('/u/mx/cgroup.max.descendants', '-1'))).toBe('ERANGE')
    expect(errnoOf(fs.writeSync('/u/mx/cgroup.max.descendants', 'abc'))).toBe('EINVAL')
    right(fs.writeSync('/u/mx/cgroup.max.descendants', '1'))
    right(fs.mkdirSync('/u/mx/a'))
    expect(errnoOf(fs.mkdirSync('/u/mx/b'))).toBe('EAGAIN')
    expect(errnoOf(fs.mkdirSync('/u/mx/a/x'))).toBe('EAGAIN')
    // A removed (dying) cgroup no longer counts.
    right(fs.rmdirSync('/u/mx/a'))
    right(fs.mkdirSync('/u/mx/b'))
    right(fs.writeSync('/u/mx/cgroup.max.descendants', '0'))
    expect(errnoOf(fs.mkdirSync('/u/mx/c'))).toBe('EAGAIN')
  })

  it('cgroup.events populated propagates up a chain and back (test_cgcore_populated)', () => {
    const { host, fs } = v2()
    for (const path of ['/u/A', '/u/A/B', '/u/A/B/C', '/u/A/B/D']) right(fs.mkdirSync(path))
    const events = () => ['A', 'A/B', 'A/B/C', 'A/B/D'].map((path) => right(fs.readSync(`/u/${path}/cgroup.events`)))
    const off = 'populated 0\nfrozen 0\n'
    const on = 'populated 1\nfrozen 0\n'
    expect(events()).toEqual([off, off, off, off])
    const task = host.spawn()
    right(fs.writeSync('/u/A/B/C/cgroup.procs', `${task.tid}`))
    expect(events()).toEqual([on, on, on, off])
    right(fs.writeSync('/u/cgroup.procs', `${task.tid}`))
    expect(events()).toEqual([off, off, off, off])
    right(fs.writeSync('/u/A/B/D/cgroup.procs', `${task.tid}`))
    expect(events()).toEqual([on, on, off, on])
    // Exit depopulates too (a zombie populates nothing).
    right(host.exitSync(task.tid))
    expect(events()).toEqual([off, off, off, off])
    expect(errnoOf(fs.readSync('/u/cgroup.events'))).toBe('ENOENT')
  })

  it('cgroup.stat counts descendants, live css per controller and dying descendants', () => {
    const { fs } = v2()
    right(fs.mkdirSync('/u/a'))
    right(fs.mkdirSync('/u/a/b'))
    right(fs.writeSync('/u/cgroup.subtree_control', '+p'))
    expect(right(fs.readSync('/u/cgroup.stat'))).toBe(
      // The root's own css counts: p in the root and /a, m in the root only.
      'nr_descendants 2\nnr_subsys_p 2\nnr_subsys_m 1\nnr_dying_descendants 0\nnr_dying_subsys_p 0\nnr_dying_subsys_m 0\n',
    )
    expect(right(fs.readSync('/u/a/cgroup.stat'))).toBe(
      'nr_descendants 1\nnr_subsys_p 1\nnr_subsys_m 0\nnr_dying_descendants 0\nnr_dying_subsys_p 0\nnr_dying_subsys_m 0\n',
    )
    expect(right(fs.readSync('/u/a/b/cgroup.stat'))).toBe(
      'nr_descendants 0\nnr_subsys_p 0\nnr_subsys_m 0\nnr_dying_descendants 0\nnr_dying_subsys_p 0\nnr_dying_subsys_m 0\n',
    )
    expect(errnoOf(fs.writeSync('/u/cgroup.stat', '1'))).toBe('EINVAL')
  })

  it('cgroup.kill: 1 ends every task below, other values ERANGE, junk EINVAL, not readable', async () => {
    const { host, fs } = v2()
    right(fs.mkdirSync('/u/k'))
    right(fs.mkdirSync('/u/k/sub'))
    const one = host.spawn()
    const two = host.spawn()
    right(host.forkSync(two.tid, { thread: true }))
    right(fs.writeSync('/u/k/cgroup.procs', `${one.tid}`))
    right(fs.writeSync('/u/k/sub/cgroup.procs', `${two.tid}`))
    for (const [value, answer] of [['2', 'ERANGE'], ['0', 'ERANGE'], ['-1', 'ERANGE'], ['abc', 'EINVAL']] as const)
      expect(errnoOf(await fs.write('/u/k/cgroup.kill', value)()), value).toBe(answer)
    expect(errnoOf(fs.readSync('/u/k/cgroup.kill'))).toBe('EINVAL')
    expect(errnoOf(fs.readSync('/u/cgroup.kill'))).toBe('ENOENT')
    right(await fs.write('/u/k/cgroup.kill', '1')())
    expect(right(fs.readSync('/u/k/cgroup.events'))).toBe('populated 0\nfrozen 0\n')
    expect(right(fs.readSync('/u/k/sub/cgroup.threads'))).toBe('')
    right(fs.rmdirSync('/u/k/sub'))
    right(fs.rmdirSync('/u/k'))
    // Without waiting too: every thread of the process ends.
    const three = host.spawn()
    const thread = right(host.forkSync(three.tid, { thread: true }))
    right(fs.mkdirSync('/u/k2'))
    right(fs.writeSync('/u/k2/cgroup.procs', `${three.tid}`))
    right(fs.writeSync('/u/k2/cgroup.kill', '1'))
    expect([three.state, thread.state]).toEqual(['zombie', 'reaped'])
    expect(right(fs.readSync('/u/k2/cgroup.events'))).toBe('populated 0\nfrozen 0\n')
  })

  it('lists each directory with its files and children, sorted', () => {
    const { fs } = v2()
    right(fs.mkdirSync('/u/a'))
    expect(right(fs.listSync('/u/a'))).toEqual([
      'cgroup.controllers', 'cgroup.events', 'cgroup.kill', 'cgroup.max.depth', 'cgroup.max.descendants',
      'cgroup.procs', 'cgroup.stat', 'cgroup.subtree_control', 'cgroup.threads', 'cgroup.type',
    ])
    expect(right(fs.listSync('/u'))).toContain('a')
    expect(right(fs.listSync('/u'))).not.toContain('cgroup.type')
    const one = v1()
    right(one.fs.mkdirSync('/h/a'))
    expect(right(one.fs.listSync('/h/a'))).toEqual(['cgroup.clone_children', 'cgroup.procs', 'notify_on_release', 'tasks'])
    expect(right(one.fs.listSync('/h'))).toEqual(['a', 'cgroup.clone_children', 'cgroup.procs', 'cgroup.sane_behavior', 'notify_on_release', 'release_agent', 'tasks'])
    expect(errnoOf(one.fs.listSync('/h/a/tasks'))).toBe('ENOTDIR')
    expect(errnoOf(one.fs.readSync('/h/a'))).toBe('EISDIR')
  })
})
