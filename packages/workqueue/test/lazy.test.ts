/**
 * Lazy workqueues (Axboe 2009): one core thread at creation, per-CPU threads
 * created by the core thread when a work first arrives for their CPU, the
 * core running the work itself when creation fails, idle lazy threads
 * exiting; and the thread count of an idle host, eager against lazy.
 */
import * as E from 'fp-ts/lib/Either.js'
import { systemError, type Host } from '@cgtx/core'
import { describe, expect, it } from 'vitest'
import { currentWork, queueWork, type WorkqueueSystem } from '../src/index.ts'
import { ok, settle, setup, work } from './fixtures.ts'

const threadsOf = (system: WorkqueueSystem, name: string): Array<string> =>
  system
    .workerTasks()
    .map((task) => task.comm)
    .filter((comm) => comm.startsWith(`${name}/`))
    .sort()

describe('lazy workqueues', () => {
  it('start one core thread; the core creates a CPU’s thread and hands the work over', async () => {
    const { clock, system } = setup({ lazyIdleTimeoutMs: 50 }, { cpus: 4 })
    const wq = ok(system.createWorkqueue({ name: 'lazy', threads: 'lazy' }))
    expect(threadsOf(system, 'lazy')).toEqual(['lazy/0'])
    const ran: Array<string> = []
    queueWork(wq, work(() => void ran.push(`${currentWork()!.worker.comm} on ${currentWork()!.cpu}`)), { cpu: 2 })
    await settle(clock)
    expect(ran).toEqual(['lazy/2 on 2'])
    expect(threadsOf(system, 'lazy')).toEqual(['lazy/0', 'lazy/2'])
    // The CPU's thread now takes its works directly.
    queueWork(wq, work(() => void ran.push(`${currentWork()!.worker.comm} on ${currentWork()!.cpu}`)), { cpu: 2 })
    await settle(clock)
    expect(ran[1]).toBe('lazy/2 on 2')
    // Idle lazy threads exit after the timeout; the core stays.
    await clock.advance(51)
    expect(threadsOf(system, 'lazy')).toEqual(['lazy/0'])
  })

  it('runs the work on the core when the CPU’s thread cannot be created', async () => {
    const state = { failing: false }
    const spawnWorker = (host: Host, comm: string) =>
      state.failing ? E.left(systemError('EAGAIN', `create ${comm}`)) : host.createKernelThread({ comm })
    const { clock, system } = setup({ spawnWorker }, { cpus: 4 })
    const wq = ok(system.createWorkqueue({ name: 'lazy', threads: 'lazy' }))
    state.failing = true
    const ran: Array<string | undefined> = []
    queueWork(wq, work(() => void ran.push(currentWork()!.worker.comm)), { cpu: 3 })
    await settle(clock)
    expect(ran).toEqual(['lazy/0'])
  })

  it('eager workqueues own one thread per CPU from the start', () => {
    const { system } = setup({}, { cpus: 4 })
    ok(system.createWorkqueue({ name: 'eager', threads: 'eager' }))
    expect(threadsOf(system, 'eager')).toEqual(['eager/0', 'eager/1', 'eager/2', 'eager/3'])
    expect(E.isLeft(system.createWorkqueue({ name: 'bad', threads: 'lazy', flags: { unbound: true } }))).toBe(true)
  })

  it('an idle host with N workqueues: eager N×CPUs threads, lazy N, shared (CMWQ) none of their own', () => {
    const count = (threads: 'eager' | 'lazy' | 'shared', n: number, cpus: number): number => {
      const { system } = setup({}, { cpus })
      const before = system.workerTasks().length
      for (let i = 0; i < n; i++) ok(system.createWorkqueue({ name: `wq${i}`, threads }))
      return system.workerTasks().length - before
    }
    expect(count('eager', 10, 8)).toBe(80)
    expect(count('lazy', 10, 8)).toBe(10)
    expect(count('shared', 10, 8)).toBe(0)
  })
})
