/**
 * The lock rules of a transaction, each planted on purpose: the validator
 * must report the violation (naming the rule, the subsystem and what else is
 * involved) and the transaction must roll back with nothing observable
 * changed. Plus the locks themselves: FIFO sleeping locks, a fair
 * reader/writer semaphore, spin locks that never wait.
 */
import * as E from 'fp-ts/lib/Either.js'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { RwSemaphore, SleepLock, SpinLock, type AttachContext, type Host, type Subsystem } from '@cgtx/core'
import { hostWith, left, observe, right } from './fixtures.ts'

type Calls = Array<string>

// A subsystem whose callbacks are given; every call is logged as `name.phase`.
const subsystem = (name: string, calls: Calls, callbacks: Partial<Subsystem<null>>): Subsystem<null> => {
  const logged = <A>(phase: string, fn?: (ctx: AttachContext<null>) => A) => (ctx: AttachContext<null>): A | undefined => {
    calls.push(`${name}.${phase}`)
    return fn?.(ctx)
  }
  return {
    name,
    createState: () => null,
    prepareSleep: logged('prepareSleep', callbacks.prepareSleep) as Subsystem<null>['prepareSleep'],
    prepareSpin: logged('prepareSpin', callbacks.prepareSpin) as Subsystem<null>['prepareSpin'],
    abortSpin: logged('abortSpin'),
    abortSleep: logged('abortSleep'),
    commit: logged('commit', callbacks.commit),
    attach: logged('attach', callbacks.attach) as Subsystem<null>['attach'],
    postAttach: logged('postAttach'),
  }
}

const setup = (subsystems: ReadonlyArray<Subsystem<null>>): { host: Host; pid: number } => {
  const host = hostWith(subsystems)
  right(host.mkdirSync({ hierarchy: 'h', path: '/x' }))
  const task = host.spawn()
  right(host.forkSync(task.tid, { thread: true }))
  return { host, pid: task.tid }
}

const moveTo = (host: Host, pid: number, path: string) => host.attachSync({ mode: 'process', pid, to: { hierarchy: 'h', path } })

describe('lock validator', () => {
  it('refuses a lock two subsystems take in prepareSleep, naming the holder, and rolls back', () => {
    const calls: Calls = []
    const shared = new SleepLock('shared_lock')
    const take = (ctx: AttachContext<null>) => ctx.lock(shared)
    const { host, pid } = setup([subsystem('a', calls, { prepareSleep: take }), subsystem('b', calls, { prepareSleep: take })])
    const before = observe(host)
    const error = left(moveTo(host, pid, '/x'))
    expect(error).toMatchObject({ _tag: 'SystemError', subsystem: 'b', fault: { kind: 'lock-rule', subsystem: 'b', phase: 'prepareSleep' } })
    expect(host.validator.violations).toEqual([
      expect.objectContaining({ rule: 'shared-in-prepareSleep', subsystem: 'b', holder: 'a', lock: 'shared_lock', phase: 'prepareSleep' }),
    ])
    expect(host.validator.violations[0]!.message).toContain('already held by a')
    expect(calls).toEqual(['a.prepareSleep', 'b.prepareSleep', 'a.abortSleep', 'a.postAttach', 'b.postAttach'])
    expect(shared.owner).toBeUndefined()
    expect(observe(host)).toEqual(before)
  })

  it('lets every subsystem take the mmap lock through lockMmap, taking it once', () => {
    const calls: Calls = []
    const readers: Array<number> = []
    const takeMmap = (ctx: AttachContext<null>) => {
      const mm = ctx.tasks[0]!.task.group.mm
      const result = ctx.lockMmap(mm)
      readers.push(mm.mmapLock.readCount)
      return result
    }
    const { host, pid } = setup([subsystem('a', calls, { prepareSleep: takeMmap }), subsystem('b', calls, { prepareSleep: takeMmap })])
    const report = right(moveTo(host, pid, '/x'))
    expect(report.moved).toHaveLength(2)
    expect(readers).toEqual([1, 1])
    expect(host.validator.violations).toEqual([])
    expect(host.task(pid)!.group.mm.mmapLock.readCount).toBe(0)
  })

  it('refuses a sleeping lock in prepareSpin (sleep-in-spin) and rolls back', () => {
    const calls: Calls = []
    const sleeping = new SleepLock('sleepy')
    const { host, pid } = setup([
      subsystem('a', calls, {}),
      subsystem('b', calls, { prepareSpin: (ctx) => void ctx.lock(sleeping) }),
    ])
    const before = observe(host)
    const error = left(moveTo(host, pid, '/x'))
    expect(error).toMatchObject({ fault: { kind: 'lock-rule', subsystem: 'b', phase: 'prepareSpin' } })
    expect(host.validator.violations).toEqual([expect.objectContaining({ rule: 'sleep-in-spin', subsystem: 'b', lock: 'sleepy', phase: 'prepareSpin' })])
    expect(host.validator.violations[0]!.message).toContain('sleeping function called from invalid context')
    expect(calls).toEqual([
      'a.prepareSleep', 'b.prepareSleep',
      'a.prepareSpin', 'b.prepareSpin',
      'a.abortSpin',
      'b.abortSleep', 'a.abortSleep',
      'a.postAttach', 'b.postAttach',
    ])
    expect(sleeping.owner).toBeUndefined()
    expect(observe(host)).toEqual(before)
  })

  it('refuses the mmap lock in prepareSpin as a sleeping lock', () => {
    const calls: Calls = []
    const { host, pid } = setup([subsystem('a', calls, { prepareSpin: (ctx) => void ctx.lockMmap(ctx.tasks[0]!.task.group.mm) })])
    const before = observe(host)
    left(moveTo(host, pid, '/x'))
    expect(host.validator.violations).toEqual([expect.objectContaining({ rule: 'sleep-in-spin', lock: 'mmap_lock' })])
    expect(observe(host)).toEqual(before)
  })

  it('refuses a contended spin lock (spin-contended) and rolls back', () => {
    const calls: Calls = []
    const spin = new SpinLock('list_lock')
    const take = (ctx: AttachContext<null>) => ctx.lockSpin(spin)
    const { host, pid } = setup([subsystem('a', calls, { prepareSpin: take }), subsystem('b', calls, { prepareSpin: take })])
    const before = observe(host)
    const error = left(moveTo(host, pid, '/x'))
    expect(error).toMatchObject({ fault: { kind: 'lock-rule', subsystem: 'b', phase: 'prepareSpin' } })
    expect(host.validator.violations).toEqual([expect.objectContaining({ rule: 'spin-contended', subsystem: 'b', lock: 'list_lock' })])
    expect(calls.filter((call) => call.includes('abort'))).toEqual(['a.abortSpin', 'b.abortSleep', 'a.abortSleep'])
    expect(spin.owner).toBeUndefined()
    expect(observe(host)).toEqual(before)
  })

  it('holds a spin lock taken in prepareSpin until commit and then releases it', () => {
    const calls: Calls = []
    const spin = new SpinLock('list_lock')
    const seen: Array<unknown> = []
    const { host, pid } = setup([
      subsystem('a', calls, { prepareSpin: (ctx) => ctx.lockSpin(spin), commit: () => void seen.push(spin.owner) }),
    ])
    right(moveTo(host, pid, '/x'))
    expect(seen[0]).toBeDefined()
    expect(spin.owner).toBeUndefined()
    expect(host.validator.violations).toEqual([])
  })

  it('holds a sleeping lock from prepareSleep through commit, releases it before attach; unlock releases early', () => {
    const calls: Calls = []
    const held = new SleepLock('held_lock')
    const early = new SleepLock('early_lock')
    const seen: Record<string, boolean> = {}
    const { host, pid } = setup([
      subsystem('a', calls, {
        prepareSleep: (ctx) => {
          ctx.lock(held)
          ctx.lock(early)
          ctx.unlock(early)
          seen.earlyFreeAfterUnlock = early.owner === undefined
        },
        prepareSpin: () => void (seen.heldInSpin = held.owner !== undefined),
        commit: () => void (seen.heldInCommit = held.owner !== undefined),
        attach: () => void (seen.heldInAttach = held.owner !== undefined),
      }),
    ])
    right(moveTo(host, pid, '/x'))
    expect(seen).toEqual({ earlyFreeAfterUnlock: true, heldInSpin: true, heldInCommit: true, heldInAttach: false })
    expect(held.owner).toBeUndefined()
  })

  it('keeps the thread-group lock through attach and drops it before postAttach, under the group mutex', () => {
    const calls: Calls = []
    const seen: Array<string> = []
    const { host, pid } = setup([
      {
        ...subsystem('a', calls, {}),
        attach: (ctx) => void seen.push(`attach locked=${ctx.tasks[0]!.task.group.lock.writeOwner !== undefined}`),
        postAttach: (ctx) => {
          const group = ctx.tasks[0]!.task.group
          seen.push(`postAttach locked=${group.lock.writeOwner !== undefined} mutex=${host.mutex.owner !== undefined}`)
          // The process may fork again already.
          seen.push(`fork ${E.isRight(host.forkSync(group.tgid)) ? 'ok' : 'refused'}`)
        },
      },
    ])
    right(moveTo(host, pid, '/x'))
    expect(seen).toEqual(['attach locked=true', 'postAttach locked=false mutex=true', 'fork ok'])
  })

  it('reports a lock-order cycle across two transactions, with the cycle, and refuses the second', () => {
    const calls: Calls = []
    const perCgroup = new Map<string, SleepLock>()
    const lockOf = (path: string): SleepLock => {
      let lock = perCgroup.get(path)
      if (lock === undefined) perCgroup.set(path, (lock = new SleepLock(`cg${path}`)))
      return lock
    }
    // Locks the source cgroup's lock, then the destination's.
    const srcThenDst = (ctx: AttachContext<null>) => {
      const entry = ctx.tasks[0]!
      ctx.lock(lockOf(ctx.from(entry).cgroup.path))
      return ctx.lock(lockOf(ctx.to(entry).cgroup.path))
    }
    const { host, pid } = setup([subsystem('a', calls, { prepareSleep: srcThenDst })])
    right(moveTo(host, pid, '/x'))
    expect(host.validator.orderEdges()).toContainEqual(['cg/', 'cg/x'])
    expect(host.validator.violations).toEqual([])
    const before = observe(host)
    const error = left(moveTo(host, pid, '/'))
    expect(error).toMatchObject({ fault: { kind: 'lock-rule', subsystem: 'a', phase: 'prepareSleep' } })
    expect(host.validator.violations).toEqual([
      expect.objectContaining({ rule: 'order-cycle', subsystem: 'a', lock: 'cg/', cycle: ['cg/x', 'cg/', 'cg/x'] }),
    ])
    expect(host.validator.violations[0]!.message).toContain('cg/x → cg/ → cg/x')
    for (const lock of perCgroup.values()) expect(lock.owner).toBeUndefined()
    expect(observe(host)).toEqual(before)
  })
})

type SleepAction = { readonly kind: 'none' } | { readonly kind: 'lock'; readonly lock: number } | { readonly kind: 'mmap' }
type SpinAction = { readonly kind: 'none' } | { readonly kind: 'spin'; readonly lock: number } | { readonly kind: 'sleep'; readonly lock: number }

const sleepActionArb: fc.Arbitrary<SleepAction> = fc.oneof(
  fc.constant({ kind: 'none' as const }),
  fc.integer({ min: 0, max: 2 }).map((lock) => ({ kind: 'lock' as const, lock })),
  fc.constant({ kind: 'mmap' as const }),
)
const spinActionArb: fc.Arbitrary<SpinAction> = fc.oneof(
  { weight: 2, arbitrary: fc.constant({ kind: 'none' as const }) },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 2 }).map((lock) => ({ kind: 'spin' as const, lock })) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 2 }).map((lock) => ({ kind: 'sleep' as const, lock })) },
)

// The first rule the plan breaks, walking the phases as the engine does.
const firstViolation = (plan: ReadonlyArray<readonly [SleepAction, SpinAction]>): { rule: string; subsystem: number } | undefined => {
  const sleepHeld = new Set<number>()
  for (const [i, [sleep]] of plan.entries()) {
    if (sleep.kind !== 'lock') continue
    if (sleepHeld.has(sleep.lock)) return { rule: 'shared-in-prepareSleep', subsystem: i }
    sleepHeld.add(sleep.lock)
  }
  const spinHeld = new Set<number>()
  for (const [i, [, spin]] of plan.entries()) {
    if (spin.kind === 'sleep') return { rule: 'sleep-in-spin', subsystem: i }
    if (spin.kind !== 'spin') continue
    if (spinHeld.has(spin.lock)) return { rule: 'spin-contended', subsystem: i }
    spinHeld.add(spin.lock)
  }
  return undefined
}

describe('lock rules under random plans', () => {
  it('a transaction succeeds iff no rule is broken; a broken rule is reported and changes nothing', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(sleepActionArb, spinActionArb), { minLength: 1, maxLength: 4 }), (plan) => {
        const sleepLocks = [0, 1, 2].map((i) => new SleepLock(`sleep${i}`))
        const spinLocks = [0, 1, 2].map((i) => new SpinLock(`spin${i}`))
        const calls: Calls = []
        const subsystems = plan.map(([sleep, spin], i) =>
          subsystem(`s${i}`, calls, {
            prepareSleep: (ctx) =>
              sleep.kind === 'lock' ? ctx.lock(sleepLocks[sleep.lock]!) : sleep.kind === 'mmap' ? ctx.lockMmap(ctx.tasks[0]!.task.group.mm) : undefined,
            prepareSpin: (ctx) =>
              spin.kind === 'spin' ? ctx.lockSpin(spinLocks[spin.lock]!) : spin.kind === 'sleep' ? void ctx.lock(sleepLocks[spin.lock]!) : undefined,
          }),
        )
        const { host, pid } = setup(subsystems)
        const before = observe(host)
        const result = moveTo(host, pid, '/x')
        const expected = firstViolation(plan)
        if (expected === undefined) {
          expect(result._tag).toBe('Right')
          expect(host.validator.violations).toEqual([])
        } else {
          expect(left(result)).toMatchObject({ fault: { kind: 'lock-rule', subsystem: `s${expected.subsystem}` } })
          expect(host.validator.violations.map((v) => [v.rule, v.subsystem])).toEqual([[expected.rule, `s${expected.subsystem}`]])
          expect(observe(host)).toEqual(before)
        }
        for (const lock of [...sleepLocks, ...spinLocks]) expect(lock.owner).toBeUndefined()
        expect(host.task(pid)!.group.mm.mmapLock.readCount).toBe(0)
      }),
      { numRuns: 200 },
    )
  })
})

describe('SleepLock', () => {
  it('is taken synchronously when free and handed over in FIFO order', async () => {
    const lock = new SleepLock('l')
    const [o1, o2, o3, o4] = [{}, {}, {}, {}]
    expect(lock.acquire(o1)).toBeUndefined()
    expect(lock.owner).toBe(o1)
    const order: Array<string> = []
    const w2 = Promise.resolve(lock.acquire(o2)).then(() => void order.push('o2'))
    const w3 = Promise.resolve(lock.acquire(o3)).then(() => void order.push('o3'))
    const w4 = Promise.resolve(lock.acquire(o4)).then(() => void order.push('o4'))
    expect(lock.waiting).toBe(3)
    // Nobody jumps the queue, even when the lock is momentarily free.
    expect(lock.tryAcquire({})).toBe(false)
    lock.release(o1)
    expect(lock.owner).toBe(o2)
    await w2
    lock.release(o2)
    expect(lock.owner).toBe(o3)
    lock.release(o3)
    lock.release(o4)
    await Promise.all([w3, w4])
    expect(order).toEqual(['o2', 'o3', 'o4'])
    expect(lock.owner).toBeUndefined()
    expect(lock.tryAcquire(o1)).toBe(true)
  })
})

describe('RwSemaphore', () => {
  it('admits readers together, and a waiting writer holds back later readers', async () => {
    const sem = new RwSemaphore('tg')
    const writer = {}
    expect(sem.tryRead()).toBe(true)
    expect(sem.read({})).toBeUndefined()
    expect(sem.readCount).toBe(2)
    const order: Array<string> = []
    const w = Promise.resolve(sem.write(writer)).then(() => void order.push('writer'))
    // A reader arriving after the writer waits behind it.
    expect(sem.tryRead()).toBe(false)
    const r1 = Promise.resolve(sem.read({})).then(() => void order.push('r1'))
    const r2 = Promise.resolve(sem.read({})).then(() => void order.push('r2'))
    sem.releaseRead()
    expect(sem.writeOwner).toBeUndefined()
    sem.releaseRead()
    expect(sem.writeOwner).toBe(writer)
    await w
    expect(sem.readCount).toBe(0)
    sem.releaseWrite(writer)
    // Both queued readers enter together.
    expect(sem.readCount).toBe(2)
    await Promise.all([r1, r2])
    expect(order).toEqual(['writer', 'r1', 'r2'])
    expect(sem.tryWrite({})).toBe(false)
    sem.releaseRead()
    sem.releaseRead()
    expect(sem.tryWrite(writer)).toBe(true)
  })

  it('hands over to writers one at a time, in arrival order', async () => {
    const sem = new RwSemaphore('tg')
    const [w1, w2] = [{}, {}]
    expect(sem.tryWrite(w1)).toBe(true)
    const second = sem.write(w2)
    const reader = Promise.resolve(sem.read({}))
    sem.releaseWrite(w1)
    expect(sem.writeOwner).toBe(w2)
    expect(sem.readCount).toBe(0)
    await second
    sem.releaseWrite(w2)
    await reader
    expect(sem.readCount).toBe(1)
  })
})

describe('SpinLock', () => {
  it('is taken and released synchronously and never waits', () => {
    const spin = new SpinLock('s')
    const [o1, o2] = [{}, {}]
    expect(spin.tryLock(o1)).toBe(true)
    expect(spin.tryLock(o2)).toBe(false)
    expect(spin.owner).toBe(o1)
    expect(() => spin.unlock(o2)).toThrow(/non-holder/)
    spin.unlock(o1)
    expect(spin.owner).toBeUndefined()
    expect(spin.tryLock(o2)).toBe(true)
  })
})

