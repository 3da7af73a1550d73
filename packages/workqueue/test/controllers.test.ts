/**
 * Controllers throttle workers (with the built-ins of @cgtx/subsystems):
 * cpu.max caps a cgroup's works, cpu.weight divides contended CPU, a
 * throttled cgroup does not hold back others, memory.max fails an
 * allocation inside a work, pids.max limits forks from a work, cpuset picks
 * the CPUs, reconciled with the workqueue's; and what remote-charge changes.
 * Plus the RFC's test module (lib/test_cgroup_workqueue.c) as tests.
 */
import * as E from 'fp-ts/lib/Either.js'
import { VirtualCgroupFs, VirtualClock, type Host } from '@cgtx/core'
import { createHost, type Builtins } from '@cgtx/subsystems'
import { describe, expect, it } from 'vitest'
import {
  WorkqueueSystem,
  allocate,
  burn,
  currentWork,
  flushWorkqueue,
  forkFromWork,
  fromBuiltins,
  queueCgroupWork,
  queueWork,
  type Strategy,
} from '../src/index.ts'
import { cg, err, ok, work } from './fixtures.ts'

interface World {
  readonly clock: VirtualClock
  readonly host: Host
  readonly builtins: Builtins
  readonly fs: VirtualCgroupFs
  readonly system: WorkqueueSystem
}

const world = (cpus = 1, cgroups: ReadonlyArray<string> = ['/a', '/b', '/c']): World => {
  const clock = new VirtualClock()
  const { host, builtins } = ok(createHost({ layout: 'v2', cpus, clock }))
  const fs = new VirtualCgroupFs(host)
  for (const path of cgroups) ok(fs.mkdirSync(`/unified${path}`))
  const system = ok(WorkqueueSystem.create(host, { controllers: fromBuiltins(host, builtins) }))
  return { clock, host, builtins, fs, system }
}

const cgroupWq = (system: WorkqueueSystem, strategy: Strategy = 'migrate', name = 'cg') =>
  ok(system.createWorkqueue({ name, flags: { unbound: true, cgroup: true }, strategy }))

describe('cpu', () => {
  it('cpu.max caps the CPU time a cgroup’s works get per period', async () => {
    const { clock, fs, system } = world()
    ok(fs.writeSync('/unified/a/cpu.max', '10000 100000')) // 10 ms per 100 ms
    const wq = cgroupWq(system)
    let done = -1
    queueCgroupWork(wq, work(async () => void (await burn(25), (done = clock.now()))), cg('/a'))
    await clock.advance(100)
    expect(ok(system.cpuStat(cg('/a'))).usageMs).toBe(10)
    await clock.advance(100)
    expect(ok(system.cpuStat(cg('/a'))).usageMs).toBe(20)
    await clock.advance(100)
    expect(done).toBe(205)
    expect(ok(system.cpuStat(cg('/a'))).nrThrottled).toBe(2)
    // cpu.stat of the controller saw the same time.
    expect(ok(fs.readSync('/unified/a/cpu.stat'))).toMatch(/usage_usec 25000/)
  })

  it('under contention CPU time divides by cpu.weight', async () => {
    const { clock, fs, system } = world()
    ok(fs.writeSync('/unified/a/cpu.weight', '100'))
    ok(fs.writeSync('/unified/b/cpu.weight', '300'))
    const wq = cgroupWq(system)
    for (const path of ['/a', '/b']) queueCgroupWork(wq, work(async () => void (await burn(1000))), cg(path))
    await clock.advance(400)
    const a = ok(system.cpuStat(cg('/a'))).usageMs
    const b = ok(system.cpuStat(cg('/b'))).usageMs
    expect(a + b).toBe(400)
    expect(b / a).toBeCloseTo(3, 5)
  })

  it('a throttled cgroup’s works never hold back another cgroup’s works', async () => {
    const { clock, fs, system } = world()
    ok(fs.writeSync('/unified/a/cpu.max', '1000 100000')) // 1 ms per 100 ms
    const wq = cgroupWq(system)
    const finished: Array<string> = []
    for (let i = 0; i < 3; i++) queueCgroupWork(wq, work(async () => void (await burn(50), finished.push(`a${i}`))), cg('/a'))
    for (let i = 0; i < 5; i++) queueCgroupWork(wq, work(async () => void (await burn(2), finished.push(`b${i}`))), cg('/b'))
    await clock.advance(30)
    expect(finished.filter((name) => name.startsWith('b')).sort()).toEqual(['b0', 'b1', 'b2', 'b3', 'b4'])
    expect(finished.some((name) => name.startsWith('a'))).toBe(false)
    expect(ok(system.cpuStat(cg('/a'))).usageMs).toBeLessThanOrEqual(1)
  })

  it('remote-charge: time is charged to the work’s cgroup but cpu.max does not throttle the work', async () => {
    const { clock, fs, system } = world()
    ok(fs.writeSync('/unified/a/cpu.max', '10000 100000'))
    const wq = cgroupWq(system, 'remote-charge')
    let done = -1
    queueCgroupWork(wq, work(async () => void (await burn(25), (done = clock.now()))), cg('/a'))
    await clock.advance(50)
    expect(done).toBe(25)
    expect(ok(system.cpuStat(cg('/a'))).usageMs).toBe(25)
    // The charge is debt: /a's migrated works are throttled until it is paid.
    const migrating = cgroupWq(system, 'migrate', 'mig')
    let later = -1
    queueCgroupWork(migrating, work(async () => void (await burn(5), (later = clock.now()))), cg('/a'))
    await clock.advance(400)
    expect(later).toBeGreaterThan(200)
  })
})

describe('cpuset', () => {
  it('restricts the CPUs a work runs on; remote-charge ignores it', async () => {
    const { clock, fs, system } = world(4)
    ok(fs.writeSync('/unified/a/cpuset.cpus', '2'))
    const wq = cgroupWq(system)
    queueCgroupWork(wq, work(async () => void (await burn(5))), cg('/a'))
    await clock.advance(10)
    expect(system.scheduler.usagePerCpu()).toEqual([0, 0, 5, 0])
    const remote = cgroupWq(system, 'remote-charge', 'rc')
    queueCgroupWork(remote, work(async () => void (await burn(5))), cg('/a'))
    await clock.advance(10)
    expect(system.scheduler.usagePerCpu()).toEqual([5, 0, 5, 0])
  })

  it('an empty intersection with the workqueue’s CPUs falls back to the workqueue’s CPUs', async () => {
    const { clock, fs, system } = world(4)
    ok(fs.writeSync('/unified/a/cpuset.cpus', '2-3'))
    const wq = ok(system.createWorkqueue({ name: 'pinned', flags: { unbound: true, cgroup: true }, cpus: [1] }))
    queueCgroupWork(wq, work(async () => void (await burn(5))), cg('/a'))
    await clock.advance(10)
    expect(system.scheduler.usagePerCpu()).toEqual([0, 5, 0, 0])
    ok(fs.writeSync('/unified/b/cpuset.cpus', '0-1'))
    queueCgroupWork(wq, work(async () => void (await burn(5))), cg('/b'))
    await clock.advance(10)
    expect(system.scheduler.usagePerCpu()).toEqual([0, 10, 0, 0])
  })
})

describe('memory and pids', () => {
  it('memory.max makes an over-limit allocation inside a work fail; remote-charge charges the work’s cgroup', async () => {
    const { clock, fs, system } = world()
    ok(fs.writeSync('/unified/a/memory.max', '65536'))
    const results: Array<string> = []
    const tryAllocate = (bytes: number) => () => {
      const got = allocate(bytes)
      results.push(E.isRight(got) ? `ok ${got.right.cgroup.path}` : (got.left._tag === 'SystemError' ? got.left.errno : 'bad'))
      if (E.isRight(got)) got.right.free()
    }
    for (const strategy of ['migrate', 'pools', 'remote-charge'] as const) {
      const wq = cgroupWq(system, strategy, strategy)
      queueCgroupWork(wq, work(tryAllocate(4096)), cg('/a'))
      queueCgroupWork(wq, work(tryAllocate(131072)), cg('/a'))
      await flushWorkqueue(wq)
      await clock.advance(0)
    }
    expect(results).toEqual(['ok /a', 'ENOMEM', 'ok /a', 'ENOMEM', 'ok /a', 'ENOMEM'])
    expect(ok(fs.readSync('/unified/a/memory.current')).trim()).toBe('0')
  })

  it('pids.max limits forks from a work (the worker counts too); remote-charge does not', async () => {
    const { clock, fs, host, system } = world()
    ok(fs.writeSync('/unified/a/pids.max', '2'))
    const outcomes: Array<string> = []
    const forkTwice = () => {
      for (let i = 0; i < 2; i++) {
        const child = forkFromWork('child')
        outcomes.push(E.isRight(child) ? 'forked' : child.left._tag === 'SystemError' ? child.left.errno : 'bad')
        if (E.isRight(child)) {
          ok(host.exitSync(child.right.tid))
          ok(host.reap(child.right.tid))
        }
      }
    }
    queueCgroupWork(cgroupWq(system), work(forkTwice), cg('/a'))
    await clock.advance(1)
    expect(outcomes).toEqual(['forked', 'forked'])
    // Keep the first child alive: worker + child = 2, the second fork fails.
    outcomes.length = 0
    const children: Array<number> = []
    queueCgroupWork(
      cgroupWq(system, 'migrate', 'keep'),
      work(() => {
        for (let i = 0; i < 2; i++) {
          const child = forkFromWork('child')
          outcomes.push(E.isRight(child) ? 'forked' : child.left._tag === 'SystemError' ? child.left.errno : 'bad')
          if (E.isRight(child)) children.push(child.right.tid)
        }
        for (const tid of children) ok(host.exitSync(tid)), ok(host.reap(tid))
      }),
      cg('/a'),
    )
    await clock.advance(1)
    expect(outcomes).toEqual(['forked', 'EAGAIN'])
    outcomes.length = 0
    children.length = 0
    queueCgroupWork(
      cgroupWq(system, 'remote-charge', 'rc'),
      work(() => {
        for (let i = 0; i < 3; i++) {
          const child = forkFromWork('child')
          outcomes.push(E.isRight(child) ? 'forked' : 'refused')
          if (E.isRight(child)) children.push(child.right.tid)
        }
        for (const tid of children) ok(host.exitSync(tid)), ok(host.reap(tid))
      }),
      cg('/a'),
    )
    await clock.advance(1)
    expect(outcomes).toEqual(['forked', 'forked', 'forked'])
  })
})

describe('the RFC test module (lib/test_cgroup_workqueue.c)', () => {
  // cwq_1, cwq_2 (memory.max = 64 KiB), cwq_1/cwq_3 (no memory controller: cwq_1 does not enable it).
  const rfcWorld = () => {
    const w = world(2, ['/cwq_1', '/cwq_2', '/cwq_1/cwq_3'])
    ok(w.fs.writeSync('/unified/cwq_2/memory.max', '65536'))
    const cwq = cgroupWq(w.system)
    const plain = ok(w.system.createWorkqueue({ name: 'plain', flags: { unbound: true } }))
    return { ...w, cwq, plain }
  }
  const where = (): string => currentWork()!.cgroupIn('unified')!.path

  it('a plain work runs in a worker in the root', async () => {
    const { clock, plain } = rfcWorld()
    let seen = ''
    queueWork(plain, work(() => void (seen = `${currentWork()!.worker.flags.kthread} ${where()}`)))
    await clock.advance(1)
    expect(seen).toBe('true /')
  })

  it('a cgroup work runs in its cgroup', async () => {
    const { clock, cwq } = rfcWorld()
    let seen = ''
    queueCgroupWork(cwq, work(() => void (seen = where())), cg('/cwq_1'))
    await clock.advance(1)
    expect(seen).toBe('/cwq_1')
  })

  it('256 works spread at random over the root and three cgroups each run in their own', async () => {
    const { clock, cwq, system } = rfcWorld()
    const paths = ['/', '/cwq_1', '/cwq_2', '/cwq_1/cwq_3']
    let seed = 12345
    const random = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31)
    const wrong: Array<string> = []
    let ran = 0
    for (let i = 0; i < 256; i++) {
      const expected = paths[Math.floor(random() * paths.length)]!
      ok(
        queueCgroupWork(
          cwq,
          work(async () => {
            if (where() !== expected) wrong.push(`${i}: ${where()} != ${expected}`)
            await clock.sleep(random() < 0.5 ? 0 : 1)
            if (where() !== expected) wrong.push(`${i} after sleeping: ${where()} != ${expected}`)
            ran++
          }),
          cg(expected),
        ),
      )
    }
    await clock.advance(10)
    expect(wrong).toEqual([])
    expect(ran).toBe(256)
    expect(system.totalCgroupRefs()).toBe(0)
  })

  it('an allocation of twice memory.max: plain succeeds, limited cgroup fails, unlimited and memory-less cgroups succeed', async () => {
    const { clock, cwq, plain } = rfcWorld()
    const results: Record<string, string> = {}
    const attempt = (label: string) => () => {
      const got = allocate(2 * 65536)
      results[label] = E.isRight(got) ? 'ok' : got.left._tag === 'SystemError' ? got.left.errno : 'bad'
      if (E.isRight(got)) got.right.free()
    }
    queueWork(plain, work(attempt('plain')))
    queueCgroupWork(cwq, work(attempt('cwq_2')), cg('/cwq_2'))
    queueCgroupWork(cwq, work(attempt('cwq_1')), cg('/cwq_1'))
    queueCgroupWork(cwq, work(attempt('cwq_3')), cg('/cwq_1/cwq_3'))
    await clock.advance(1)
    expect(results).toEqual({ plain: 'ok', cwq_2: 'ENOMEM', cwq_1: 'ok', cwq_3: 'ok' })
  })

  it('allocate outside a work is refused', () => {
    const refused = err(allocate(1))
    expect(refused._tag === 'SystemError' && refused.errno).toBe('EINVAL')
  })
})
