import * as E from 'fp-ts/lib/Either.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Host } from '@cgtx/core'
import { moveTasks, rmdirRetrying, type MoveBackend, type MoveOutcome } from '@cgtx/kernel'
import { requireSandbox, type Sandbox } from '@cgtx/kernel/testing'
import { FakeBackend } from './fakeBackend.ts'

const fast = { justForked: { attempts: 3, delayMs: 1 }, busyRmdir: { attempts: 3, delayMs: 1 } }

describe('moveTasks on a scripted backend', () => {
  it('retries EINVAL for a just-forked task as configured, and no more', async () => {
    const fs = new FakeBackend()
    fs.spawn(100)
    fs.failures.push({ path: 'cgroup.procs', errno: 'EINVAL', times: 2 })
    const done = await moveTasks(fs, { mode: 'process', pids: [100], to: [{ hierarchy: 'pids', path: '/a' }] }, { retry: fast })()
    expect(done).toMatchObject({ _tag: 'Committed', moves: [{ pid: 100, attempts: 3 }] })
    const strict = new FakeBackend()
    strict.spawn(100)
    strict.failures.push({ path: 'cgroup.procs', errno: 'EINVAL', times: 2 })
    const refused = await moveTasks(strict, { mode: 'process', pids: [100], to: [{ hierarchy: 'pids', path: '/a' }] }, { retry: { justForked: { attempts: 2, delayMs: 1 } } })()
    expect(refused).toMatchObject({ _tag: 'Aborted', error: { errno: 'EINVAL' } })
    expect(strict.writes.length).toBe(2)
  })

  it('skips a task that exits mid-move, or fails and rolls back, by policy', async () => {
    const to = [{ hierarchy: 'pids', path: '/a' }, { hierarchy: 'freezer', path: '/f' }]
    const skip = new FakeBackend()
    skip.spawn(100)
    skip.spawn(200)
    skip.failures.push({ path: '/f/cgroup.procs', pid: 200, errno: 'ESRCH' })
    const skipped = await moveTasks(skip, { mode: 'process', pids: [100, 200], to }, { retry: fast })()
    expect(skipped).toMatchObject({ _tag: 'Committed', skipped: [200] })
    expect(skip.placements.get(100)).toMatchObject({ pids: '/a', freezer: '/f' })

    const fail = new FakeBackend()
    fail.spawn(100)
    fail.spawn(200)
    fail.failures.push({ path: '/f/cgroup.procs', pid: 200, errno: 'ESRCH' })
    const failed = await moveTasks(fail, { mode: 'process', pids: [100, 200], to }, { retry: { ...fast, exited: 'fail' } })()
    expect(failed).toMatchObject({ _tag: 'Aborted', error: { errno: 'ESRCH' }, predicted: false })
    // Everything that moved is back.
    expect(fail.placements.get(100)).toMatchObject({ pids: '/', freezer: '/' })
    expect(fail.placements.get(200)).toMatchObject({ pids: '/', freezer: '/' })
  })

  it('puts threads that were in different cgroups back one by one', async () => {
    const fs = new FakeBackend()
    fs.spawn(100, [101, 102])
    fs.placements.get(101)!.pids = '/x'
    fs.failures.push({ path: '/f/cgroup.procs', errno: 'EBUSY' })
    const done = await moveTasks(fs, { mode: 'process', pids: [100], to: [{ hierarchy: 'pids', path: '/a' }, { hierarchy: 'freezer', path: '/f' }] }, { retry: fast })()
    expect(done._tag).toBe('Aborted')
    expect([100, 101, 102].map((tid) => fs.placements.get(tid)!.pids)).toEqual(['/', '/x', '/'])
    expect(fs.writes.filter((w) => w.ok).map((w) => w.path).slice(1)).toEqual(['/pids/tasks', '/pids/x/tasks', '/pids/tasks'])
  })

  it('reports exactly what is where when a write-back fails too', async () => {
    const fs = new FakeBackend()
    fs.spawn(100)
    fs.spawn(200)
    fs.failures.push({ path: '/f/cgroup.procs', pid: 200, errno: 'ENOSPC' })
    fs.failures.push({ path: '/pids/cgroup.procs', pid: 100, errno: 'EACCES' })
    const done = await moveTasks(fs, { mode: 'process', pids: [100, 200], to: [{ hierarchy: 'pids', path: '/a' }, { hierarchy: 'freezer', path: '/f' }] }, { retry: fast })()
    expect(done).toMatchObject({
      _tag: 'Indeterminate',
      error: { errno: 'ENOSPC' },
      stuck: [{ tid: 100, hierarchy: 'pids', expected: '/', error: { errno: 'EACCES' } }],
    })
    const placement = (done as Extract<MoveOutcome, { _tag: 'Indeterminate' }>).placement
    expect(placement).toEqual([
      { pid: 100, tid: 100, cgroups: { pids: '/a', freezer: '/' } },
      { pid: 200, tid: 200, cgroups: { pids: '/', freezer: '/' } },
    ])
  })

  it('refuses bad input before writing', async () => {
    const fs = new FakeBackend()
    fs.spawn(100)
    const cases: Array<[unknown, string]> = [
      [{ mode: 'process', pids: ['abc'], to: [{ hierarchy: 'pids', path: '/a' }] }, 'request.pids.0'],
      [{ mode: 'process', pids: [], to: [{ hierarchy: 'pids', path: '/a' }] }, 'request.pids'],
      [{ mode: 'process', pids: [100], to: [{ hierarchy: 'memory', path: '/a' }] }, 'request.to.0.hierarchy'],
      [{ mode: 'process', pids: [100], to: [{ hierarchy: 'pids', path: '/a' }, { hierarchy: 'pids', path: '/b' }] }, 'request.to.1.hierarchy'],
      [{ mode: 'group', pids: [100], to: [{ hierarchy: 'pids', path: '/a' }] }, 'request.mode'],
    ]
    for (const [request, field] of cases) {
      expect(await moveTasks(fs, request)()).toMatchObject({ _tag: 'Aborted', error: { _tag: 'BadArgument', field } })
    }
    expect(fs.writes).toEqual([])
  })
})

describe('rmdirRetrying', () => {
  it('retries EBUSY with backoff up to the policy, treats ENOENT as done', async () => {
    let calls = 0
    const busyTwice = { rmdirSync: () => (++calls <= 2 ? E.left({ _tag: 'SystemError' as const, errno: 'EBUSY' as const, operation: 'rmdir', message: '' }) : E.right(undefined)) }
    expect(await rmdirRetrying(busyTwice, '/pids/x', { attempts: 3, delayMs: 1, backoff: 2 })).toEqual({ result: E.right(undefined), attempts: 3 })
    calls = 0
    expect((await rmdirRetrying(busyTwice, '/pids/x', { attempts: 2, delayMs: 1 })).result).toMatchObject({ _tag: 'Left', left: { errno: 'EBUSY' } })
    const gone = { rmdirSync: () => E.left({ _tag: 'SystemError' as const, errno: 'ENOENT' as const, operation: 'rmdir', message: '' }) }
    expect((await rmdirRetrying(gone, '/pids/x')).result).toEqual(E.right(undefined))
    expect((await rmdirRetrying(gone, '/pids/x', { attempts: 0, delayMs: 1 })).result).toMatchObject({ _tag: 'Left', left: { _tag: 'BadArgument' } })
  })
})

describe('moveTasks on the real kernel', () => {
  let sandbox: Sandbox
  beforeAll(async () => {
    sandbox = await requireSandbox()
  })
  afterAll(async () => {
    expect((await sandbox.cleanup()).leftovers).toEqual([])
  })
  const ref = (hierarchy: string, path: string) => ({ hierarchy, path: `/${sandbox.prefix}${path}` })
  const mkdirs = (...paths: Array<string>) => {
    for (const path of paths) expect(sandbox.fs.mkdirSync(path)).toEqual(E.right(undefined))
  }
  const spawn = async () => {
    const puppet = await sandbox.spawn()
    if (E.isLeft(puppet)) throw new Error(puppet.left.message)
    return puppet.right
  }
  const where = (pid: number, tid = pid) => E.getOrElseW(() => ({}) as Record<string, string>)(sandbox.fs.placement(pid, tid))

  it('moves processes with their threads into several hierarchies at once', async () => {
    mkdirs(sandbox.path('pids', '/m'), sandbox.path('freezer', '/m'), sandbox.path('unified', '/m'))
    const a = await spawn()
    const thread = Number((await a.command('thread')).value)
    const b = await spawn()
    const to = [ref('pids', '/m'), ref('freezer', '/m'), ref('unified', '/m')]
    const done = await moveTasks(sandbox.fs, { mode: 'process', pids: [a.pid, b.pid], to })()
    expect(done).toMatchObject({ _tag: 'Committed', skipped: [] })
    for (const [pid, tid] of [[a.pid, a.pid], [a.pid, thread], [b.pid, b.pid]] as const)
      expect(where(pid, tid)).toMatchObject({ pids: to[0]!.path, freezer: to[1]!.path, unified: to[2]!.path })
  })

  it('rolls every hierarchy back when a later one refuses (cpuset ENOSPC)', async () => {
    mkdirs(sandbox.path('pids', '/r'), sandbox.path('cpuset', '/empty'))
    const a = await spawn()
    const before = where(a.pid)
    const done = await moveTasks(sandbox.fs, { mode: 'process', pids: [a.pid], to: [ref('pids', '/r'), ref('cpuset', '/empty')] })()
    expect(done).toMatchObject({ _tag: 'Aborted', error: { errno: 'ENOSPC' }, undone: [{ pid: a.pid, hierarchy: 'pids' }] })
    expect(where(a.pid)).toEqual(before)
  })

  it('is Indeterminate, with the real placement, when the way back is gone', async () => {
    mkdirs(sandbox.path('pids', '/src'), sandbox.path('pids', '/dst'), sandbox.path('cpuset', '/empty2'))
    const a = await spawn()
    expect(sandbox.fs.writeSync(sandbox.path('pids', '/src/cgroup.procs'), `${a.pid}`)).toEqual(E.right(undefined))
    // After the first write succeeds, the origin disappears (as if another manager removed it).
    const backend: MoveBackend = Object.assign(Object.create(sandbox.fs) as MoveBackend, {
      writeSync: (path: string, value: string) => {
        const written = sandbox.fs.writeSync(path, value)
        if (E.isRight(written) && path.endsWith('/dst/cgroup.procs')) sandbox.fs.rmdirSync(sandbox.path('pids', '/src'))
        return written
      },
    })
    const done = await moveTasks(backend, { mode: 'process', pids: [a.pid], to: [ref('pids', '/dst'), ref('cpuset', '/empty2')] })()
    expect(done).toMatchObject({
      _tag: 'Indeterminate',
      error: { errno: 'ENOSPC' },
      stuck: [{ tid: a.pid, hierarchy: 'pids', expected: `/${sandbox.prefix}/src`, error: { errno: 'ENOENT' } }],
      placement: [{ pid: a.pid, tid: a.pid, cgroups: { pids: `/${sandbox.prefix}/dst`, cpuset: `/${sandbox.prefix}` } }],
    })
  })

  it('refuses before writing: missing destination, origin outside the confinement, a pid that is gone', async () => {
    const a = await spawn()
    expect(await moveTasks(sandbox.fs, { mode: 'process', pids: [a.pid], to: [ref('pids', '/nowhere')] })()).toMatchObject({ _tag: 'Aborted', error: { errno: 'ENOENT' } })
    // Our own process sits in the pids root, outside the confinement: it could not be put back.
    expect(await moveTasks(sandbox.fs, { mode: 'process', pids: [process.pid], to: [ref('pids', '')] })()).toMatchObject({ _tag: 'Aborted', error: { _tag: 'BadArgument' } })
    expect(where(process.pid).pids).toBe('/')
    await a.exit()
    expect(await moveTasks(sandbox.fs, { mode: 'process', pids: [a.pid], to: [ref('pids', '')] }, { retry: { exited: 'fail' } })()).toMatchObject({ _tag: 'Aborted', error: { errno: 'ESRCH' } })
  })

  it('moves a process with a zombie: the zombie stays, nothing is recorded for it', async () => {
    mkdirs(sandbox.path('pids', '/zz'))
    const a = await spawn()
    const child = Number((await a.command('fork')).value)
    sandbox.track(child)
    expect((await a.command(`kill ${child}`)).ok).toBe(true)
    // On v1 a zombie's /proc/PID/cgroup reads / everywhere, which is outside the sandbox: recording it would refuse the move.
    const done = await moveTasks(sandbox.fs, { mode: 'process', pids: [child, a.pid], to: [ref('pids', '/zz')] })()
    expect(done).toMatchObject({ _tag: 'Committed', moves: [{ pid: child, from: [] }, { pid: a.pid }] })
    expect(sandbox.fs.readSync(sandbox.path('pids', '/zz/cgroup.procs'))).toEqual(E.right(`${a.pid}\n`))
  })

  it('asks the model first: a refusal the model predicts writes nothing', async () => {
    mkdirs(sandbox.path('pids', '/p'), sandbox.path('freezer', '/p'))
    const a = await spawn()
    const before = where(a.pid)
    const host = E.getOrElseW(() => {
      throw new Error('host')
    })(Host.create({ hierarchies: [{ name: 'pids' }, { name: 'freezer' }] }))
    const model = host.spawn('puppet')
    for (const name of ['pids', 'freezer']) host.mkdirSync({ hierarchy: name, path: `/${sandbox.prefix}` })
    host.mkdirSync({ hierarchy: 'pids', path: `/${sandbox.prefix}/p` })
    // The model has no freezer /p: it predicts ENOENT, so not even the pids write happens.
    const mirror = { host, pidOf: (real: number) => (real === a.pid ? model.tid : undefined) }
    const done = await moveTasks(sandbox.fs, { mode: 'process', pids: [a.pid], to: [ref('pids', '/p'), ref('freezer', '/p')] }, { mirror })()
    expect(done).toMatchObject({ _tag: 'Aborted', predicted: true, error: { errno: 'ENOENT' } })
    expect(where(a.pid)).toEqual(before)
    expect(host.cgroupOf(model, host.hierarchy('pids')!).path).toBe('/')
    // Once the model agrees, both move.
    host.mkdirSync({ hierarchy: 'freezer', path: `/${sandbox.prefix}/p` })
    expect(await moveTasks(sandbox.fs, { mode: 'process', pids: [a.pid], to: [ref('pids', '/p'), ref('freezer', '/p')] }, { mirror })()).toMatchObject({ _tag: 'Committed' })
    expect(host.cgroupOf(model, host.hierarchy('freezer')!).path).toBe(`/${sandbox.prefix}/p`)
  })
})
