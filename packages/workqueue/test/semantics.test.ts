/**
 * CMWQ rules on the virtual clock: the pending bit, non-reentrancy,
 * max_active and the overflow list, ordered and delayed work, flush, drain,
 * cancel, destroy, the kernel documentation's execution timeline.
 */
import * as E from 'fp-ts/lib/Either.js'
import { describe, expect, it } from 'vitest'
import type { CgtxError } from '@cgtx/core'
import {
  burn,
  cancelWorkSync,
  createWork,
  currentWork,
  destroyWorkqueue,
  drainWorkqueue,
  flushWork,
  flushWorkqueue,
  queueCgroupWork,
  queueDelayedWork,
  queueWork,
  type Work,
  type Workqueue,
} from '../src/index.ts'
import { err, ok, settle, setup, work } from './fixtures.ts'

describe('the pending bit', () => {
  it('queueing a pending work returns false and changes nothing', async () => {
    const { clock, system } = setup()
    const wq = ok(system.createWorkqueue({ name: 'events' }))
    let runs = 0
    const w = work(() => void runs++)
    expect(ok(queueWork(wq, w))).toBe(true)
    const inFlight = wq.inFlight
    expect(ok(queueWork(wq, w))).toBe(false)
    expect(wq.inFlight).toBe(inFlight)
    await settle(clock)
    expect(runs).toBe(1)
    expect(w.isPending).toBe(false)
  })

  it('a running work may be requeued (from inside) and runs again', async () => {
    const { clock, system } = setup()
    const wq = ok(system.createWorkqueue({ name: 'events' }))
    let runs = 0
    const w: Work = work(() => {
      runs++
      if (runs < 3) expect(ok(queueWork(wq, w))).toBe(true)
    })
    queueWork(wq, w)
    await settle(clock)
    expect(runs).toBe(3)
  })

  it('a work requeued while it runs is never run by two workers at once', async () => {
    const { clock, system } = setup()
    const wq = ok(system.createWorkqueue({ name: 'unbound', flags: { unbound: true } }))
    let running = 0
    let most = 0
    const starts: Array<number> = []
    const w = work(async () => {
      running++
      most = Math.max(most, running)
      starts.push(clock.now())
      await clock.sleep(10)
      running--
    })
    queueWork(wq, w)
    await clock.advance(2)
    expect(w.isRunning).toBe(true)
    expect(ok(queueWork(wq, w))).toBe(true) // pending and running at once
    expect(w.isPending).toBe(true)
    await clock.advance(30)
    expect(most).toBe(1)
    expect(starts).toEqual([0, 10])
  })

  it('a work requeued on another CPU while it runs is queued behind itself', async () => {
    const { clock, system } = setup()
    const wq = ok(system.createWorkqueue({ name: 'events' }))
    const cpus: Array<number | undefined> = []
    let running = 0
    let most = 0
    const w = work(async () => {
      running++
      most = Math.max(most, running)
      cpus.push(currentWork()!.cpu)
      await clock.sleep(10)
      running--
    })
    queueWork(wq, w, { cpu: 0 })
    await clock.advance(1)
    queueWork(wq, w, { cpu: 1 })
    await clock.advance(30)
    expect(most).toBe(1)
    expect(cpus).toEqual([0, 0])
  })
})

describe('max_active', () => {
  it('parks works beyond max_active on the overflow list and activates them in order', async () => {
    const { clock, system } = setup()
    const wq = ok(system.createWorkqueue({ name: 'limited', flags: { unbound: true }, maxActive: 2 }))
    const finished: Array<[number, number]> = []
    let running = 0
    let most = 0
    for (let i = 0; i < 5; i++) {
      queueWork(
        wq,
        work(async () => {
          running++
          most = Math.max(most, running)
          await clock.sleep(10)
          running--
          finished.push([i, clock.now()])
        }),
      )
    }
    await clock.advance(100)
    expect(most).toBe(2)
    expect(wq.peakActive).toBe(2)
    expect(finished).toEqual([
      [0, 10],
      [1, 10],
      [2, 20],
      [3, 20],
      [4, 30],
    ])
  })

  it('a bound workqueue hands a freed slot to its first inactive work and still admits no more than max_active', async () => {
    const { clock, system } = setup()
    const wq = ok(system.createWorkqueue({ name: 'bound', maxActive: 2 }))
    let running = 0
    let most = 0
    const finished: Array<[string, number]> = []
    const sleeper = (name: string, ms: number) =>
      work(async () => {
        running++
        most = Math.max(most, running)
        await clock.sleep(ms)
        running--
        finished.push([name, clock.now()])
      })
    for (const [name, ms] of [['a', 5], ['b', 20], ['c', 20]] as const) ok(queueWork(wq, sleeper(name, ms)))
    // At 5 ms `a` ends and `c` takes its slot; `d` and `e`, queued after, must wait.
    await clock.advance(6)
    for (const [name, ms] of [['d', 20], ['e', 20]] as const) ok(queueWork(wq, sleeper(name, ms)))
    await clock.advance(100)
    expect(most).toBe(2)
    expect(finished).toEqual([
      ['a', 5],
      ['b', 20],
      ['c', 25],
      ['d', 40],
      ['e', 45],
    ])
  })

  it('ordered workqueues run one work at a time in queue order', async () => {
    const { clock, system } = setup()
    const wq = ok(system.createWorkqueue({ name: 'ordered', ordered: true }))
    const log: Array<string> = []
    for (const [name, ms] of [
      ['a', 5],
      ['b', 1],
      ['c', 3],
    ] as const) {
      queueWork(
        wq,
        work(async () => {
          log.push(`start ${name}`)
          await clock.sleep(ms)
          log.push(`end ${name}`)
        }),
      )
    }
    await clock.advance(20)
    expect(log).toEqual(['start a', 'end a', 'start b', 'end b', 'start c', 'end c'])
    expect(err(system.createWorkqueue({ name: 'o2', ordered: true, maxActive: 2 }))._tag).toBe('BadArgument')
  })
})

describe('the kernel documentation timeline (workqueue.rst, one CPU)', () => {
  // w0 burns 5 ms, sleeps 10 ms, burns 5 ms; w1 and w2 burn 5 ms then sleep 10 ms.
  const timeline = async (maxActive: number): Promise<Array<number>> => {
    const { clock, system } = setup({}, { cpus: 1 })
    const wq = ok(system.createWorkqueue({ name: 'doc', maxActive }))
    const done: Array<number> = [0, 0, 0]
    const w0 = work(async () => {
      await burn(5)
      await clock.sleep(10)
      await burn(5)
      done[0] = clock.now()
    })
    const short = (i: number): Work =>
      work(async () => {
        await burn(5)
        await clock.sleep(10)
        done[i] = clock.now()
      })
    queueWork(wq, w0)
    queueWork(wq, short(1))
    queueWork(wq, short(2))
    await clock.advance(100)
    return done
  }

  it('max_active >= 3: 20, 20, 25', async () => {
    expect(await timeline(3)).toEqual([20, 20, 25])
  })

  it('max_active = 2: 20, 20, 35', async () => {
    expect(await timeline(2)).toEqual([20, 20, 35])
  })

  it('a CPU-intensive work does not hold back the next one', async () => {
    const { clock, system } = setup({}, { cpus: 1 })
    const wq = ok(system.createWorkqueue({ name: 'hog', flags: { cpuIntensive: true } }))
    const starts: Array<number> = []
    for (let i = 0; i < 2; i++)
      queueWork(
        wq,
        work(async () => {
          starts.push(clock.now())
          await burn(5)
        }),
      )
    await clock.advance(20)
    expect(starts).toEqual([0, 0])
  })
})

describe('delayed work', () => {
  it('runs after its delay; 0 queues at once; a pending delayed work is not queued twice', async () => {
    const { clock, system } = setup()
    const wq = ok(system.createWorkqueue({ name: 'events' }))
    const at: Array<number> = []
    const w = work(() => void at.push(clock.now()))
    expect(ok(queueDelayedWork(wq, w, 15))).toBe(true)
    expect(ok(queueDelayedWork(wq, w, 1))).toBe(false)
    expect(ok(queueWork(wq, w))).toBe(false)
    await clock.advance(14)
    expect(at).toEqual([])
    await clock.advance(1)
    expect(at).toEqual([15])
    queueDelayedWork(wq, w, 0)
    await settle(clock)
    expect(at).toEqual([15, 15])
    expect(err(queueDelayedWork(wq, w, -1))._tag).toBe('BadArgument')
  })

  it('cancelWorkSync stops the timer', async () => {
    const { clock, system } = setup()
    const wq = ok(system.createWorkqueue({ name: 'events' }))
    let runs = 0
    const w = work(() => void runs++)
    queueDelayedWork(wq, w, 10)
    expect(ok(await cancelWorkSync(w))).toBe(true)
    await clock.advance(20)
    expect(runs).toBe(0)
    expect(w.isPending).toBe(false)
  })
})

describe('flush', () => {
  it('flushWork waits for the last queued instance; false for an idle work', async () => {
    const { clock, system } = setup()
    const wq = ok(system.createWorkqueue({ name: 'events' }))
    const w = work(async () => void (await clock.sleep(10)))
    expect(ok(await flushWork(w))).toBe(false)
    queueWork(wq, w)
    let flushed = false
    void flushWork(w).then((waited) => (flushed = ok(waited)))
    await clock.advance(9)
    expect(flushed).toBe(false)
    await clock.advance(1)
    expect(flushed).toBe(true)
    expect(w.isRunning || w.isPending).toBe(false)
  })

  it('flushWork returns with the work idle even when the instance it waits for is cancelled while an earlier one runs', async () => {
    // Found by the interleaving property: the pending instance was stolen
    // and its flusher woke while the first run was still going.
    const { clock, system } = setup()
    const wq = ok(system.createWorkqueue({ name: 'events' }))
    const w = work(async () => void (await clock.sleep(10)))
    queueWork(wq, w)
    await clock.advance(1)
    expect(w.isRunning).toBe(true)
    expect(ok(queueWork(wq, w))).toBe(true)
    let flushed = false
    const flushing = flushWork(w).then((waited) => (flushed = ok(waited)))
    const cancelled = cancelWorkSync(w)
    await clock.advance(8)
    expect(flushed).toBe(false)
    expect(w.isRunning).toBe(true)
    await clock.advance(1)
    await flushing
    expect(flushed).toBe(true)
    expect(w.isRunning || w.isPending).toBe(false)
    expect(ok(await cancelled)).toBe(true)
    expect(w.runs).toBe(1)
  })

  it('flushWorkqueue waits only for works queued before it', async () => {
    const { clock, system } = setup()
    const wq = ok(system.createWorkqueue({ name: 'unbound', flags: { unbound: true } }))
    const done: Array<string> = []
    queueWork(wq, work(async () => void (await clock.sleep(10), done.push('before'))))
    let flushedAt = -1
    void flushWorkqueue(wq).then(() => (flushedAt = clock.now()))
    queueWork(wq, work(async () => void (await clock.sleep(50), done.push('after'))))
    await clock.advance(100)
    expect(flushedAt).toBe(10)
    expect(done).toEqual(['before', 'after'])
  })
})

describe('drain and destroy', () => {
  it('drain waits for chained work and refuses other queueing meanwhile', async () => {
    const { clock, system } = setup()
    const wq = ok(system.createWorkqueue({ name: 'events' }))
    let chain = 0
    const w: Work = work(async () => {
      await clock.sleep(5)
      if (++chain < 3) expect(ok(queueWork(wq, w))).toBe(true)
    })
    queueWork(wq, w)
    let drained = false
    void drainWorkqueue(wq).then(() => (drained = true))
    const outsider = work(() => undefined)
    const refused = err(queueWork(wq, outsider))
    expect(refused._tag === 'SystemError' && refused.errno).toBe('EBUSY')
    expect(outsider.isPending).toBe(false)
    await clock.advance(100)
    expect(drained).toBe(true)
    expect(chain).toBe(3)
    expect(ok(queueWork(wq, outsider))).toBe(true)
  })

  it('destroy is refused while busy and succeeds once idle; a destroyed workqueue refuses work', async () => {
    const { clock, system } = setup()
    const wq = ok(system.createWorkqueue({ name: 'events' }))
    queueWork(wq, work(async () => void (await clock.sleep(10))))
    const busy = err(wq.destroySync())
    expect(busy._tag === 'SystemError' && busy.errno).toBe('EBUSY')
    // A delayed work still on its timer is cancelled: it never runs, is no
    // longer pending, and can be queued elsewhere.
    let delayedRuns = 0
    const delayed = work(() => void delayedRuns++)
    queueDelayedWork(wq, delayed, 50)
    await clock.advance(10)
    ok(wq.destroySync())
    const refused = err(queueWork(wq, work(() => undefined)))
    expect(refused._tag === 'SystemError' && refused.errno).toBe('ENODEV')
    await clock.advance(100)
    expect(delayedRuns).toBe(0)
    expect(delayed.isPending).toBe(false)
    expect(ok(queueWork(ok(system.createWorkqueue({ name: 'other' })), delayed))).toBe(true)
    await settle(clock)
    expect(delayedRuns).toBe(1)
  })

  it('destroyWorkqueue drains first', async () => {
    const { clock, system } = setup()
    const wq = ok(system.createWorkqueue({ name: 'events' }))
    let ran = false
    queueWork(wq, work(async () => void (await clock.sleep(10), (ran = true))))
    const destroyed = destroyWorkqueue(wq)
    await clock.advance(10)
    expect(E.isRight(await destroyed)).toBe(true)
    expect(ran).toBe(true)
  })
})

describe('cancelWorkSync', () => {
  it('steals a pending work, waits for the running one, and refuses queueing meanwhile', async () => {
    const { clock, system } = setup()
    const wq = ok(system.createWorkqueue({ name: 'unbound', flags: { unbound: true } }))
    let runs = 0
    const w = work(async () => {
      runs++
      await clock.sleep(10)
    })
    queueWork(wq, w)
    await clock.advance(1)
    queueWork(wq, w) // pending and running
    const cancelled = cancelWorkSync(w)
    expect(ok(queueWork(wq, w))).toBe(false)
    let returned: boolean | undefined
    void cancelled.then((value) => (returned = ok(value)))
    await clock.advance(5)
    expect(returned).toBeUndefined()
    expect(ok(queueWork(wq, w))).toBe(false)
    await clock.advance(5)
    expect(returned).toBe(true)
    expect(w.isPending || w.isRunning).toBe(false)
    await clock.advance(50)
    expect(runs).toBe(1)
    expect(wq.inFlight).toBe(0)
  })

  it('returns false for an idle work', async () => {
    expect(ok(await cancelWorkSync(work(() => undefined)))).toBe(false)
    expect(err(await cancelWorkSync({}))._tag).toBe('BadArgument')
    expect(err(await flushWork('work'))._tag).toBe('BadArgument')
  })
})

describe('bad input', () => {
  it('a non-workqueue given to any workqueue function is a BadArgument, not a throw', async () => {
    const w = work(() => undefined)
    const fake = { queue: () => E.right(true), flush: () => Promise.resolve() } as unknown as Workqueue
    for (const bad of [undefined, null, 'events', fake]) {
      const given = bad as unknown as Workqueue
      const refusals: Array<E.Either<CgtxError, unknown>> = [
        queueWork(given, w),
        queueCgroupWork(given, w, { hierarchy: 'unified', path: '/' }),
        queueDelayedWork(given, w, 0),
        await flushWorkqueue(given),
        await drainWorkqueue(given),
        await destroyWorkqueue(given),
      ]
      for (const refused of refusals) expect(err(refused)).toMatchObject({ _tag: 'BadArgument', field: 'wq' })
    }
    expect(w.isPending).toBe(false)
  })
})

describe('failures', () => {
  it('a work that throws or rejects is recorded and no other work is lost', async () => {
    const { clock, system } = setup()
    const wq = ok(system.createWorkqueue({ name: 'events' }))
    let ran = 0
    queueWork(wq, work(() => void ran++))
    const thrower = work(() => {
      throw new Error('boom')
    })
    const rejecter = work(async () => {
      await clock.sleep(1)
      throw new Error('later')
    })
    queueWork(wq, thrower)
    queueWork(wq, rejecter)
    queueWork(wq, work(() => void ran++))
    await clock.advance(5)
    expect(ran).toBe(2)
    expect(system.failures.map((failure) => (failure.error as Error).message)).toEqual(['boom', 'later'])
    expect(thrower.failures).toHaveLength(1)
    expect(rejecter.failures.map((error) => (error as Error).message)).toEqual(['later'])
    expect(thrower.runs).toBe(1)
    expect(wq.inFlight).toBe(0)
    // Each work keeps its own failures, most recent last; one that never failed has none.
    const fine = work(() => undefined)
    queueWork(wq, fine)
    queueWork(wq, thrower)
    await clock.advance(1)
    expect(thrower.failures).toHaveLength(2)
    expect(rejecter.failures).toHaveLength(1)
    expect(fine.failures).toEqual([])
  })

  it('a work lets go of its waiters and its delayed-queueing state once they are done with', async () => {
    const { clock, system } = setup()
    const wq = ok(system.createWorkqueue({ name: 'events' }))
    // Internal fields, read here because a leak of them shows nowhere else: a
    // waiter kept after its run would be woken again by every later run.
    const held = (w: Work): Array<unknown> => [w.pendingWaiters, w.runWaiters, w.canceling, w.timer, w.holder, w.cgroups]
    // Its first run requeues it while it sleeps: another worker finds it
    // running and schedules it on this one (the place with a holder).
    const slow: Work = work(async () => {
      if (slow.runs === 0) queueWork(wq, slow)
      await clock.sleep(2)
    })
    queueWork(wq, slow)
    const flushedPending = flushWork(slow)
    await clock.advance(3)
    const flushedRunning = flushWork(slow)
    const cancelled = cancelWorkSync(slow)
    await clock.advance(2)
    expect(slow.runs).toBe(2)
    expect(ok(await flushedPending)).toBe(true)
    expect(ok(await flushedRunning)).toBe(true)
    expect(ok(await cancelled)).toBe(false)
    const delayed = work(() => undefined)
    queueDelayedWork(wq, delayed, 3, { cpu: 1 })
    await clock.advance(4)
    expect(delayed.runs).toBe(1)
    for (const w of [slow, delayed]) expect(held(w)).toEqual(new Array(6).fill(undefined))
    // A work no flush, cancel or delay ever touched carries none of that state at all.
    const plain = work(() => undefined)
    queueWork(wq, plain)
    await settle(clock)
    expect(plain.runs).toBe(1)
    expect(Reflect.get(plain, 'rare')).toBeUndefined()
  })

  it('bad arguments are BadArgument and change nothing', async () => {
    const { system } = setup()
    const wq = ok(system.createWorkqueue({ name: 'events' }))
    expect(err(queueWork(wq, {}))._tag).toBe('BadArgument')
    // Every entry point that takes a work names the argument it refused.
    const cgroupWq = ok(system.createWorkqueue({ name: 'cgroups', flags: { unbound: true, cgroup: true } }))
    for (const refused of [
      err(queueWork(wq, 'work')),
      err(queueCgroupWork(cgroupWq, null, { hierarchy: 'unified', path: '/' })),
      err(queueDelayedWork(wq, () => undefined, 1)),
      err(await flushWork({ fn: () => undefined })),
      err(await cancelWorkSync(42)),
    ])
      expect(refused._tag === 'BadArgument' && refused.field).toBe('work')
    expect(err(queueWork(wq, work(() => undefined), { cpu: 99 }))._tag).toBe('BadArgument')
    expect(err(queueWork(wq, work(() => undefined), { cpu: -1 }))._tag).toBe('BadArgument')
    expect(err(system.createWorkqueue({ name: '' }))._tag).toBe('BadArgument')
    expect(err(system.createWorkqueue({ name: 'x', maxActive: 513 }))._tag).toBe('BadArgument')
    expect(err(system.createWorkqueue({ name: 'x', flags: { bogus: 1 } }))).toBeDefined()
    expect(err(system.createWorkqueue({ name: 'events' }))._tag).toBe('SystemError')
    expect(wq.inFlight).toBe(0)
  })

  it('createWork: a work is named as given, else after its function, else "work"; a non-function or a non-string name is a BadArgument', () => {
    const flushCache = (): void => undefined
    expect(work(flushCache, 'writeback').name).toBe('writeback')
    expect(work(flushCache).name).toBe('flushCache')
    expect(ok(createWork(Object.defineProperty(() => undefined, 'name', { value: '' }))).name).toBe('work')
    const notFunction = err(createWork('flushCache'))
    expect(notFunction._tag === 'BadArgument' && notFunction.field).toBe('fn')
    const notName = err(createWork(flushCache, 42))
    expect(notName._tag === 'BadArgument' && notName.field).toBe('name')
  })
})

describe('context', () => {
  it('names the worker task from code that never sees the work', async () => {
    const { clock, host, system } = setup()
    const wq = ok(system.createWorkqueue({ name: 'events' }))
    const deep = (): number | undefined => currentWork()?.worker.tid
    let seen: number | undefined
    const w = work(async () => {
      await clock.sleep(1)
      seen = deep()
    })
    queueWork(wq, w)
    await clock.advance(2)
    expect(seen).toBeDefined()
    expect(host.task(seen!)!.flags.kthread).toBe(true)
    expect(system.workerTasks().map((task) => task.tid)).toContain(seen)
    expect(currentWork()).toBeUndefined()
  })

  it('a work queued without a CPU from a per-CPU work goes to that work\'s CPU (queue_work: the local CPU)', async () => {
    const { clock, system } = setup()
    const wq = ok(system.createWorkqueue({ name: 'events' }))
    const cpus: Array<number | undefined> = []
    const second = work(() => void cpus.push(currentWork()!.cpu))
    const third = work(() => void cpus.push(currentWork()!.cpu))
    const first = work(() => {
      cpus.push(currentWork()!.cpu)
      ok(queueWork(wq, second))
    })
    ok(queueWork(wq, first, { cpu: 1 }))
    // Outside any work, the local CPU is CPU 0.
    ok(queueWork(wq, third))
    await settle(clock)
    expect(cpus.sort()).toEqual([0, 1, 1])
  })
})
