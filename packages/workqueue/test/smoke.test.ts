import { describe, expect, it } from 'vitest'
import { burn, currentWork, flushWorkqueue, queueCgroupWork, queueWork } from '../src/index.ts'
import { cg, ok, settle, setup, work } from './fixtures.ts'

describe('smoke', () => {
  it('runs a plain work and a cgroup work', async () => {
    const { clock, system } = setup()
    const wq = ok(system.createWorkqueue({ name: 'events' }))
    const seen: Array<string> = []
    const w = work(() => void seen.push(currentWork()!.cgroupIn('unified')!.path))
    expect(ok(queueWork(wq, w))).toBe(true)
    expect(ok(queueWork(wq, w))).toBe(false)
    await settle(clock)
    expect(seen).toEqual(['/'])
    const cwq = ok(system.createWorkqueue({ name: 'cg', flags: { unbound: true, cgroup: true } }))
    const c = work(async () => {
      seen.push(currentWork()!.cgroupIn('unified')!.path)
      await burn(5)
    })
    ok(queueCgroupWork(cwq, c, cg('/a')))
    const flushed = flushWorkqueue(cwq)
    await clock.advance(10)
    await flushed
    expect(seen).toEqual(['/', '/a'])
    expect(ok(system.cpuStat(cg('/a'))).usageMs).toBe(5)
    expect(system.totalCgroupRefs()).toBe(0)
  })
})
