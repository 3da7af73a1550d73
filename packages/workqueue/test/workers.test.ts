/**
 * Worker pools: the at-least-one-idle-worker invariant, creation that cools
 * down after a failure, rescuers for WQ_MEM_RECLAIM workqueues, idle
 * reaping, and workers being kernel-thread tasks listed in cgroup.procs.
 */
import * as E from 'fp-ts/lib/Either.js'
import { systemError, VirtualCgroupFs, type Host } from '@cgtx/core'
import { describe, expect, it } from 'vitest'
import { currentWork, queueCgroupWork, queueWork, type WorkqueueSystem } from '../src/index.ts'
import { cg, ok, settle, setup, work } from './fixtures.ts'

// A spawnWorker that fails while `failing` is set.
const flaky = (): { failing: boolean; spawn: (host: Host, comm: string) => ReturnType<Host['createKernelThread']> } => {
  const state = {
    failing: false,
    spawn: (host: Host, comm: string) =>
      state.failing ? E.left(systemError('EAGAIN', `create ${comm}`, { reason: 'injected' })) : host.createKernelThread({ comm }),
  }
  return state
}

const unboundPool = (system: WorkqueueSystem) => system.poolSummaries().find((pool) => pool.kind === 'unbound')!

describe('pools', () => {
  it('every per-CPU pool starts with one worker, and processing keeps one idle', async () => {
    const { clock, system } = setup()
    expect(system.poolSummaries().filter((pool) => pool.kind === 'percpu').map((pool) => pool.workers)).toEqual([1, 1, 1, 1])
    const wq = ok(system.createWorkqueue({ name: 'unbound', flags: { unbound: true } }))
    for (let i = 0; i < 4; i++) queueWork(wq, work(async () => void (await clock.sleep(10))))
    for (let step = 0; step < 12; step++) {
      await clock.advance(1)
      // While works run, one worker is idle in reserve: four sleeping works, five workers.
      expect(unboundPool(system).idle).toBeGreaterThanOrEqual(1)
      if (step < 9) expect(unboundPool(system)).toMatchObject({ workers: 5, idle: 1 })
    }
  })

  it('idle workers beyond the reserve are destroyed after the idle timeout', async () => {
    const { clock, host, system } = setup({ idleTimeoutMs: 1000 })
    const wq = ok(system.createWorkqueue({ name: 'unbound', flags: { unbound: true } }))
    for (let i = 0; i < 8; i++) queueWork(wq, work(async () => void (await clock.sleep(10))))
    await clock.advance(20)
    expect(unboundPool(system).workers).toBe(9)
    const tids = system.workerTasks().map((task) => task.tid)
    // The reserve worker has been idle since 0, the others since 10.
    await clock.advance(979)
    expect(unboundPool(system).workers).toBe(9)
    await clock.advance(1)
    expect(unboundPool(system).workers).toBe(8)
    await clock.advance(9)
    expect(unboundPool(system).workers).toBe(8)
    await clock.advance(1)
    // too_many_workers: idle > 2 and (idle - 2) * 4 >= busy; with nothing busy, two stay.
    expect(unboundPool(system).workers).toBe(2)
    const gone = tids.filter((tid) => host.task(tid) === undefined)
    expect(gone).toHaveLength(7)
  })

  it('a failed creation cools down before retrying; works wait meanwhile', async () => {
    const spawner = flaky()
    const { clock, system } = setup({ spawnWorker: spawner.spawn, createCooldownMs: 100 })
    const wq = ok(system.createWorkqueue({ name: 'unbound', flags: { unbound: true } }))
    spawner.failing = true
    const ran: Array<number> = []
    queueWork(wq, work(() => void ran.push(clock.now())))
    await clock.advance(50)
    // The only worker became manager and cannot create its replacement: it waits.
    expect(ran).toEqual([])
    expect(unboundPool(system).creationFailures).toBeGreaterThan(0)
    spawner.failing = false
    await clock.advance(100)
    expect(ran).toEqual([100])
  })

  it('a WQ_MEM_RECLAIM workqueue makes progress through its rescuer when no worker can be created', async () => {
    const spawner = flaky()
    const { clock, system } = setup({ spawnWorker: spawner.spawn, maydayInitialMs: 10 })
    const reclaim = ok(system.createWorkqueue({ name: 'reclaim', flags: { unbound: true, memReclaim: true } }))
    const plain = ok(system.createWorkqueue({ name: 'plain', flags: { unbound: true } }))
    spawner.failing = true
    const ran: Array<string> = []
    queueWork(plain, work(() => void ran.push('plain')))
    queueWork(reclaim, work(() => void ran.push(`reclaim by ${currentWork()!.worker.comm}`)))
    await clock.advance(11)
    expect(ran).toEqual(['reclaim by reclaim/rescuer'])
    spawner.failing = false
    await clock.advance(1000)
    expect(ran).toEqual(['reclaim by reclaim/rescuer', 'plain'])
  })

  it('a work a rescuer activates on a pool that cannot create workers is rescued in turn', async () => {
    const spawner = flaky()
    const { clock, system } = setup({ spawnWorker: spawner.spawn, maydayInitialMs: 10, createCooldownMs: 5 })
    const wq = ok(system.createWorkqueue({ name: 'reclaim', maxActive: 1, flags: { memReclaim: true } }))
    spawner.failing = true
    const ran: Array<string> = []
    // The first runs in the rescuer for 50 ms; the per-CPU worker, unable to
    // create a replacement, gives up managing once its worklist is empty and
    // goes idle. The second, activated when the first ends, must wake it.
    queueWork(wq, work(async () => {
      await clock.sleep(50)
      ran.push(`first by ${currentWork()!.worker.comm} at ${clock.now()}`)
    }), { cpu: 0 })
    queueWork(wq, work(() => void ran.push(`second by ${currentWork()!.worker.comm} at ${clock.now()}`)), { cpu: 0 })
    await clock.advance(200)
    expect(ran).toEqual(['first by reclaim/rescuer at 60', 'second by reclaim/rescuer at 70'])
  })

  it('a rescued cgroup work releases its cgroup reference', async () => {
    const spawner = flaky()
    const { clock, system } = setup({ spawnWorker: spawner.spawn })
    const wq = ok(system.createWorkqueue({ name: 'reclaim', flags: { unbound: true, cgroup: true, memReclaim: true } }))
    spawner.failing = true
    let where = ''
    queueCgroupWork(wq, work(() => void (where = `${currentWork()!.worker.comm} in ${currentWork()!.cgroupIn('unified')!.path}`)), cg('/a'))
    expect(system.cgroupRefs(cg('/a'))).toBe(1)
    await clock.advance(20)
    expect(where).toBe('reclaim/rescuer in /a')
    expect(system.cgroupRefs(cg('/a'))).toBe(0)
  })
})

describe('workers are tasks', () => {
  it('are kernel threads listed in their cgroup.procs, root when idle', async () => {
    const { clock, host, system } = setup()
    const fs = new VirtualCgroupFs(host)
    const wq = ok(system.createWorkqueue({ name: 'cg', flags: { unbound: true, cgroup: true } }))
    let listed = ''
    let tid = 0
    queueCgroupWork(
      wq,
      work(async () => {
        tid = currentWork()!.worker.tid
        await clock.sleep(1)
        listed = ok(fs.readSync('/unified/a/cgroup.procs'))
      }),
      cg('/a'),
    )
    await clock.advance(5)
    expect(listed.split('\n').filter(Boolean).map(Number)).toEqual([tid])
    expect(host.task(tid)!.flags.kthread).toBe(true)
    expect(ok(fs.readSync('/unified/a/cgroup.procs')).trim()).toBe('')
    expect(ok(fs.readSync('/unified/cgroup.procs')).split('\n').map(Number)).toContain(tid)
    await settle(clock)
  })
})
