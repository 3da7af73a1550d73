/**
 * Cgroup awareness: WQ_CGROUP's rules, the queue-time cgroup reference, and
 * the three strategies — migrate, pools, remote-charge — plus removal of a
 * cgroup that holds only workers.
 */
import * as E from 'fp-ts/lib/Either.js'
import { VirtualCgroupFs, type Host, type Subsystem } from '@cgtx/core'
import { describe, expect, it } from 'vitest'
import {
  burn,
  cancelWorkSync,
  currentWork,
  queueCgroupWork,
  queueDelayedWork,
  queueWork,
  type Work,
} from '../src/index.ts'
import { cg, err, ok, settle, setup, work } from './fixtures.ts'

const where = (): string => currentWork()!.cgroupIn('unified')!.path

describe('WQ_CGROUP rules', () => {
  it('is refused without WQ_UNBOUND, and a strategy without WQ_CGROUP', () => {
    const { system } = setup()
    const refused = err(system.createWorkqueue({ name: 'bad', flags: { cgroup: true } }))
    expect(refused._tag === 'BadArgument' && refused.field).toBe('options.flags.cgroup')
    expect(err(system.createWorkqueue({ name: 'bad', flags: { unbound: true }, strategy: 'pools' }))._tag).toBe('BadArgument')
  })

  it('refuses a plain work on a cgroup workqueue and a cgroup work on a plain one, synchronously', () => {
    const { system } = setup()
    const cgroupWq = ok(system.createWorkqueue({ name: 'cg', flags: { unbound: true, cgroup: true } }))
    const plainWq = ok(system.createWorkqueue({ name: 'plain', flags: { unbound: true } }))
    const w = work(() => undefined)
    const plainOnCgroup = err(queueWork(cgroupWq, w))
    expect(plainOnCgroup._tag === 'SystemError' && plainOnCgroup.errno).toBe('EINVAL')
    const cgroupOnPlain = err(queueCgroupWork(plainWq, w, cg('/a')))
    expect(cgroupOnPlain._tag === 'SystemError' && cgroupOnPlain.errno).toBe('EINVAL')
    expect(w.isPending).toBe(false)
    expect(system.totalCgroupRefs()).toBe(0)
  })

  it('refuses a missing or removed cgroup and a malformed target', async () => {
    const { host, system } = setup()
    const wq = ok(system.createWorkqueue({ name: 'cg', flags: { unbound: true, cgroup: true } }))
    const w = work(() => undefined)
    ok(host.rmdirSync(cg('/c')))
    const dead = err(queueCgroupWork(wq, w, cg('/c')))
    expect(dead._tag === 'SystemError' && dead.errno).toBe('ENOENT')
    expect(err(queueCgroupWork(wq, w, { hierarchy: 'unified', path: 'a' }))._tag).toBe('BadArgument')
    expect(err(queueCgroupWork(wq, w, [cg('/a'), cg('/b')]))._tag).toBe('BadArgument')
    expect(w.isPending).toBe(false)
  })
})

describe('the queue-time cgroup reference', () => {
  it('is held while pending and released on run, cancel and destroy', async () => {
    const { clock, system } = setup()
    const wq = ok(system.createWorkqueue({ name: 'cg', flags: { unbound: true, cgroup: true } }))
    const ran = work(async () => void (await clock.sleep(5)))
    ok(queueCgroupWork(wq, ran, cg('/a')))
    expect(system.cgroupRefs(cg('/a'))).toBe(1)
    await clock.advance(2)
    expect(system.cgroupRefs(cg('/a'))).toBe(1) // held while it runs
    await clock.advance(5)
    expect(system.cgroupRefs(cg('/a'))).toBe(0)

    const cancelled = work(() => undefined)
    ok(queueDelayedWork(wq, cancelled, 10, { cgroup: cg('/b') }))
    expect(system.cgroupRefs(cg('/b'))).toBe(1)
    expect(ok(await cancelWorkSync(cancelled))).toBe(true)
    expect(system.cgroupRefs(cg('/b'))).toBe(0)

    ok(queueDelayedWork(wq, work(() => undefined), 10, { cgroup: cg('/c') }))
    expect(system.cgroupRefs(cg('/c'))).toBe(1)
    ok(wq.destroySync())
    expect(system.cgroupRefs(cg('/c'))).toBe(0)
    await clock.advance(20)
    expect(system.totalCgroupRefs()).toBe(0)
  })
})

// Starts recording the workers' moves (the trace leaves kernel threads out by
// default) and returns a count of the attach transactions that reached the
// commit point.
const countMoves = (host: Host): (() => number) => {
  host.trace.kernelThreads = true
  return () => host.trace.events().filter((event) => event.phase === 'commit-point').length
}

describe('strategy migrate', () => {
  it('moves just before running, not at all if already there, and to the root only on the way to idle', async () => {
    const { clock, host, system } = setup()
    const moves = countMoves(host)
    const wq = ok(system.createWorkqueue({ name: 'cg', flags: { unbound: true, cgroup: true }, maxActive: 1 }))
    const seen: Array<string> = []
    const record = (): Work => work(() => void seen.push(where()))
    for (const path of ['/a', '/a', '/a', '/b']) ok(queueCgroupWork(wq, record(), cg(path)))
    await settle(clock)
    expect(seen).toEqual(['/a', '/a', '/a', '/b'])
    // root → /a, /a → /b, /b → root: three moves for four works.
    expect(moves()).toBe(3)
    expect(system.workerTasks().every((task) => task.cssSet.cgroup(0).isRoot)).toBe(true)
  })

  it('a busy workqueue does not push a user\'s transaction out of the trace', async () => {
    const { clock, host, system } = setup()
    const user = host.spawn()
    const mine = ok(host.attachSync({ mode: 'process', pid: user.tid, to: cg('/c') }))
    const wq = ok(system.createWorkqueue({ name: 'cg', flags: { unbound: true, cgroup: true } }))
    // 3,000 works alternating between two cgroups: 3,000 worker moves, more
    // events than the ring holds if they were recorded.
    for (let i = 0; i < 3000; i++) ok(queueCgroupWork(wq, work(() => undefined), cg(i % 2 === 0 ? '/a' : '/b')))
    await settle(clock)
    expect(host.trace.capacity).toBeLessThan(3 * 3000)
    expect(host.trace.events(mine.transaction).map((event) => event.phase)).toEqual(['begin', 'commit-point', 'end'])
  })

  it('a plain work runs in the root; a root-targeted cgroup work does not move', async () => {
    const { clock, host, system } = setup()
    const moves = countMoves(host)
    const wq = ok(system.createWorkqueue({ name: 'cg', flags: { unbound: true, cgroup: true } }))
    const plain = ok(system.createWorkqueue({ name: 'plain', flags: { unbound: true } }))
    const seen: Array<string> = []
    queueWork(plain, work(() => void seen.push(where())))
    queueCgroupWork(wq, work(() => void seen.push(where())), cg('/'))
    await settle(clock)
    expect(seen).toEqual(['/', '/'])
    expect(moves()).toBe(0)
  })

  it('falls back to the root when the move is refused, and the root move cannot be refused', async () => {
    const refuseInto = new Set<string>(['/b'])
    const picky: Subsystem<null> = {
      name: 'picky',
      createState: () => null,
      prepareSleep: (ctx) => (refuseInto.has(ctx.destinations[0]!.path) ? E.left(ctx.refuse('EPERM', 'planned')) : undefined),
    }
    const { clock, host, system } = setup({}, { subsystems: [picky] })
    const wq = ok(system.createWorkqueue({ name: 'cg', flags: { unbound: true, cgroup: true }, maxActive: 1 }))
    const seen: Array<string> = []
    queueCgroupWork(wq, work(() => void seen.push(where())), cg('/a'))
    queueCgroupWork(wq, work(() => void seen.push(where())), cg('/b'))
    await settle(clock)
    expect(seen).toEqual(['/a', '/'])
    // A controller that refuses the root too (a plugin bug): the worker leaves /a by exiting.
    refuseInto.add('/')
    const fs = new VirtualCgroupFs(host)
    queueCgroupWork(wq, work(() => void seen.push(where())), cg('/a'))
    await settle(clock)
    await settle(clock)
    expect(seen).toEqual(['/a', '/', '/a'])
    expect(ok(fs.readSync('/unified/a/cgroup.procs')).trim()).toBe('')
  })

  it('a throttled work does not hold back another cgroup’s works (each gets its own worker)', async () => {
    const { clock, system } = setup()
    const wq = ok(system.createWorkqueue({ name: 'cg', flags: { unbound: true, cgroup: true } }))
    const finished: Array<string> = []
    // /a's work is stuck (as if throttled) for a long time.
    queueCgroupWork(wq, work(async () => void (await clock.sleep(10_000), finished.push('a'))), cg('/a'))
    for (let i = 0; i < 3; i++) queueCgroupWork(wq, work(async () => void (await clock.sleep(1), finished.push(`b${i}`))), cg('/b'))
    await clock.advance(5)
    expect(finished).toEqual(['b0', 'b1', 'b2'])
  })
})

describe('strategy pools', () => {
  it('uses one pool per cgroup combination, found by search before one is created', async () => {
    const { clock, host, system } = setup()
    const moves = countMoves(host)
    const fs = new VirtualCgroupFs(host)
    const wq = ok(system.createWorkqueue({ name: 'pools', flags: { unbound: true, cgroup: true }, strategy: 'pools' }))
    const seen: Array<string> = []
    for (const path of ['/a', '/b', '/a', '/a']) ok(queueCgroupWork(wq, work(() => void seen.push(where())), cg(path)))
    await settle(clock)
    expect(seen.sort()).toEqual(['/a', '/a', '/a', '/b'])
    expect(system.poolSearches).toBe(4)
    expect(system.poolHits).toBe(2)
    const cgroupPools = system.poolSummaries().filter((pool) => pool.kind === 'cgroup')
    expect(cgroupPools.map((pool) => pool.cgroups)).toEqual([['unified:/a'], ['unified:/b']])
    // Pool workers live in their cgroup, idle or not.
    expect(ok(fs.readSync('/unified/a/cgroup.procs')).trim()).not.toBe('')
    expect(moves()).toBe(cgroupPools.reduce((sum, pool) => sum + pool.workers, 0))
  })

  it('retires a cgroup pool after the idle timeout', async () => {
    const { clock, system } = setup({ idleTimeoutMs: 100 })
    const wq = ok(system.createWorkqueue({ name: 'pools', flags: { unbound: true, cgroup: true }, strategy: 'pools' }))
    queueCgroupWork(wq, work(() => undefined), cg('/a'))
    await settle(clock)
    expect(system.poolSummaries().filter((pool) => pool.kind === 'cgroup')).toHaveLength(1)
    await clock.advance(101)
    expect(system.poolSummaries().filter((pool) => pool.kind === 'cgroup')).toHaveLength(0)
  })
})

describe('strategy remote-charge', () => {
  it('never moves the worker; CPU time is charged to the work’s cgroup; attach callbacks do not run', async () => {
    const calls: Array<string> = []
    const watcher: Subsystem<null> = { name: 'watcher', createState: () => null, attach: (ctx) => void calls.push(ctx.destinations[0]!.path) }
    const { clock, host, system } = setup({}, { subsystems: [watcher] })
    const moves = countMoves(host)
    const wq = ok(system.createWorkqueue({ name: 'rc', flags: { unbound: true, cgroup: true }, strategy: 'remote-charge' }))
    const seen: Array<string> = []
    queueCgroupWork(
      wq,
      work(async () => {
        seen.push(`${where()} charged ${currentWork()!.chargeCgroup('unified')!.path}`)
        await burn(7)
      }),
      cg('/a'),
    )
    await clock.advance(10)
    expect(seen).toEqual(['/ charged /a'])
    expect(moves()).toBe(0)
    expect(calls).toEqual([])
    expect(ok(system.cpuStat(cg('/a'))).selfMs).toBe(7)
    expect(ok(system.cpuStat(cg('/'))).selfMs).toBe(0)
    // The same work under migrate does call attach (the watcher would notice).
    const migrating = ok(system.createWorkqueue({ name: 'mig', flags: { unbound: true, cgroup: true } }))
    queueCgroupWork(migrating, work(() => undefined), cg('/a'))
    await clock.advance(1)
    expect(calls).toEqual(['/a', '/'])
  })
})

describe('a cgroup removed while its works wait', () => {
  // (Under `pools` the cgroup's pool holds a worker from queue time, so only removeCgroup can remove it: tested below.)
  for (const strategy of ['migrate'] as const) {
    it(`${strategy}: the works run in the root and their references are released`, async () => {
      const { clock, host, system } = setup()
      const wq = ok(system.createWorkqueue({ name: 'cg', flags: { unbound: true, cgroup: true }, strategy, maxActive: 1 }))
      const seen: Array<string> = []
      queueCgroupWork(wq, work(async () => void (await clock.sleep(5), seen.push(where()))), cg('/a'))
      queueCgroupWork(wq, work(() => void seen.push(where())), cg('/b'))
      await clock.advance(1)
      ok(host.rmdirSync(cg('/b'))) // /b holds no task yet: a plain rmdir succeeds
      await clock.advance(10)
      expect(seen).toEqual(['/a', '/'])
      expect(system.totalCgroupRefs()).toBe(0)
      expect(wq.inFlight).toBe(0)
    })
  }
})

describe('removing a cgroup that holds only workers', () => {
  it('completes once the workers have left; new works for it are refused meanwhile', async () => {
    const { clock, host, system } = setup()
    const wq = ok(system.createWorkqueue({ name: 'cg', flags: { unbound: true, cgroup: true }, maxActive: 1 }))
    const seen: Array<string> = []
    queueCgroupWork(wq, work(async () => void (await clock.sleep(10), seen.push(where()))), cg('/a'))
    queueCgroupWork(wq, work(() => void seen.push(where())), cg('/a'))
    await clock.advance(1)
    expect(E.isLeft(host.rmdirSync(cg('/a')))).toBe(true) // plain rmdir: populated
    let removed: E.Either<unknown, void> | undefined
    void system.removeCgroup(cg('/a')).then((result) => (removed = result))
    const refused = err(queueCgroupWork(wq, work(() => undefined), cg('/a')))
    expect(refused._tag === 'SystemError' && refused.errno).toBe('ENODEV')
    await clock.advance(5)
    expect(removed).toBeUndefined()
    await clock.advance(10)
    expect(removed !== undefined && E.isRight(removed)).toBe(true)
    // The work queued before the removal ran in the root instead.
    expect(seen).toEqual(['/a', '/'])
    expect(host.hierarchy('unified')!.lookup('/a')).toBeUndefined()
    expect(system.totalCgroupRefs()).toBe(0)
  })

  it('refuses a cgroup holding other tasks; with pools, retires the pool', async () => {
    const { clock, host, system } = setup()
    const user = host.spawn('user')
    ok(host.attachSync({ mode: 'process', pid: user.tid, to: cg('/b') }))
    const busy = err(await system.removeCgroup(cg('/b')))
    expect(busy._tag === 'SystemError' && busy.errno).toBe('EBUSY')
    const wq = ok(system.createWorkqueue({ name: 'pools', flags: { unbound: true, cgroup: true }, strategy: 'pools' }))
    queueCgroupWork(wq, work(() => undefined), cg('/a'))
    await settle(clock)
    const removal = system.removeCgroup(cg('/a'))
    await settle(clock)
    expect(E.isRight(await removal)).toBe(true)
    expect(system.poolSummaries().filter((pool) => pool.kind === 'cgroup')).toHaveLength(0)
  })
})
