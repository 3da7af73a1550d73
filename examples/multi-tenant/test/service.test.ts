import * as E from 'fp-ts/lib/Either.js'
import { describe, expect, it } from 'vitest'
import { allocate, burn, forkFromWork } from '@cgtx/workqueue'
import { TenantService } from '../src/service.ts'

const right = <A>(either: E.Either<{ message: string }, A>): A => {
  if (E.isLeft(either)) throw new Error(either.left.message)
  return either.right
}

const service = (): TenantService => {
  const made = right(TenantService.create())
  right(made.addTenant('alpha', { memoryMax: 1 << 20, pidsMax: 4, cpuWeight: 100 }))
  right(made.addTenant('beta', { cpuWeight: 300 }))
  return made
}

describe('a multi-tenant service on cgtx', () => {
  it('admits a process with all its threads and moves it between tenants as one', () => {
    const tenants = service()
    const job = right(tenants.admit('alpha', 3))
    expect(right(tenants.usage('alpha')).tasks).toBe(3)
    right(tenants.move(job.tid, 'beta'))
    expect(right(tenants.usage('alpha')).tasks).toBe(0)
    expect(right(tenants.usage('beta')).tasks).toBe(3)
    expect(right(tenants.fs.readSync('/unified/beta/cgroup.threads')).trim().split('\n')).toHaveLength(3)
  })

  it('charges work done on a tenant’s behalf to that tenant, within its limits', async () => {
    const tenants = service()
    const seen: Record<string, Array<string>> = { alpha: [], beta: [] }
    for (const tenant of ['alpha', 'beta'] as const) {
      right(
        tenants.submit(tenant, async () => {
          const big = allocate(2 << 20) // twice alpha's memory.max
          seen[tenant]!.push(E.isLeft(big) && big.left._tag === 'SystemError' ? big.left.errno : 'allocated')
          const forks = Array.from({ length: 6 }, () => forkFromWork())
          seen[tenant]!.push(`${forks.filter(E.isRight).length} forks`)
          await burn(20)
        }),
      )
    }
    await tenants.settle(1000)
    // alpha's memory.max refuses the allocation; its pids.max of 4 counts the
    // worker itself (it runs inside alpha), so 3 of the 6 forks succeed.
    expect(seen.alpha).toEqual(['ENOMEM', '3 forks'])
    expect(seen.beta).toEqual(['allocated', '6 forks'])
    expect(right(tenants.usage('alpha')).cpuMs).toBe(20)
    expect(right(tenants.usage('beta')).memoryBytes).toBe(2 << 20)
  })

  it('creates a tenant all or nothing, and refuses to remove one that has tasks', () => {
    const tenants = service()
    // 5,000,000 > PID_MAX_LIMIT: the kernel's EINVAL on pids.max, and the group is gone again.
    const refused = tenants.addTenant('gamma', { memoryMax: 4096, pidsMax: 5_000_000 })
    expect(E.isLeft(refused) && refused.left).toMatchObject({ _tag: 'SystemError', errno: 'EINVAL' })
    expect(E.isLeft(tenants.fs.listSync('/unified/gamma'))).toBe(true)
    expect(tenants.addTenant('Gamma!', {})).toEqual(E.left(expect.objectContaining({ _tag: 'BadArgument', field: 'name' })))
    expect(tenants.addTenant('gamma', { cpuWeight: 0 })).toEqual(E.left(expect.objectContaining({ _tag: 'BadArgument', field: 'limits.cpuWeight' })))

    const job = right(tenants.admit('alpha'))
    expect(tenants.removeTenant('alpha')).toEqual(E.left(expect.objectContaining({ errno: 'EBUSY' })))
    right(tenants.move(job.tid, 'beta'))
    right(tenants.removeTenant('alpha'))
  })
})
