/**
 * Model-first moves with a real controller: the model (with @cgtx/subsystems'
 * cpuset) predicts the kernel's ENOSPC for an empty cpuset, so nothing is
 * written; once both sides have CPUs, the move commits on both.
 */
import * as E from 'fp-ts/lib/Either.js'
import fc from 'fast-check'
import { availableParallelism } from 'node:os'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { Host } from '@cgtx/core'
import { moveTasks } from '@cgtx/kernel'
import { modelLayout, requireSandbox, type Puppet, type Sandbox } from '@cgtx/kernel/testing'
import { builtinSubsystems } from '@cgtx/subsystems'

let sandbox: Sandbox
beforeAll(async () => {
  sandbox = await requireSandbox({ hierarchies: ['pids', 'cpuset'] })
})
afterAll(async () => {
  expect((await sandbox.cleanup()).leftovers).toEqual([])
})

it('the model predicts cpuset ENOSPC before any real write, and agrees once the cpuset has CPUs', async () => {
  const subsystems = E.getOrElseW((error: { message: string }) => {
    throw new Error(error.message)
  })(builtinSubsystems({ cpus: availableParallelism(), mems: 1 })).filter((subsystem) => subsystem.name !== 'memory')
  const host = E.getOrElseW((error: { message: string }) => {
    throw new Error(error.message)
  })(Host.create(modelLayout(['pids', 'cpuset'], subsystems)))
  const prefix = `/${sandbox.prefix}`
  // Mirror the sandbox in the model: the prefix (with all CPUs in cpuset), an empty cpuset /job, a pids /job.
  for (const hierarchy of ['pids', 'cpuset']) {
    expect(E.isRight(host.mkdirSync({ hierarchy, path: prefix }))).toBe(true)
    expect(E.isRight(host.mkdirSync({ hierarchy, path: `${prefix}/job` }))).toBe(true)
    expect(sandbox.fs.mkdirSync(sandbox.path(hierarchy, '/job'))).toEqual(E.right(undefined))
  }
  const { VirtualCgroupFs } = await import('@cgtx/core')
  const model = new VirtualCgroupFs(host)
  const cpus = `0-${availableParallelism() - 1}`
  expect(model.writeSync(`/cpuset${prefix}/cpuset.cpus`, cpus)).toEqual(E.right(undefined))
  expect(model.writeSync(`/cpuset${prefix}/cpuset.mems`, '0')).toEqual(E.right(undefined))
  const puppet = await sandbox.spawn()
  if (E.isLeft(puppet)) throw new Error(puppet.left.message)
  const task = host.spawn('puppet')
  expect(E.isRight(host.attachSync({ mode: 'process', pid: task.tid, to: [{ hierarchy: 'pids', path: prefix }, { hierarchy: 'cpuset', path: prefix }] }))).toBe(true)
  const mirror = { host, pidOf: (real: number) => (real === puppet.right.pid ? task.tid : undefined) }
  const request = { mode: 'process', pids: [puppet.right.pid], to: [{ hierarchy: 'pids', path: `${prefix}/job` }, { hierarchy: 'cpuset', path: `${prefix}/job` }] }
  const writes: Array<string> = []
  const counting = Object.assign(Object.create(sandbox.fs) as typeof sandbox.fs, {
    writeSync: (path: string, value: string) => (writes.push(path), sandbox.fs.writeSync(path, value)),
  })

  expect(await moveTasks(counting, request, { mirror })()).toMatchObject({ _tag: 'Aborted', predicted: true, error: { errno: 'ENOSPC', subsystem: 'cpuset' } })
  expect(writes).toEqual([])
  expect(E.map((at: Record<string, string>) => at.pids)(sandbox.fs.placement(puppet.right.pid))).toEqual(E.right(prefix))

  // Give /job CPUs and a node on both sides: the model agrees, the kernel moves.
  for (const [file, value] of [['cpuset.cpus', '0'], ['cpuset.mems', '0']] as const) {
    expect(model.writeSync(`/cpuset${prefix}/job/${file}`, value)).toEqual(E.right(undefined))
    expect(sandbox.fs.writeSync(sandbox.path('cpuset', `/job/${file}`), value)).toEqual(E.right(undefined))
  }
  expect(await moveTasks(counting, request, { mirror })()).toMatchObject({ _tag: 'Committed' })
  expect(sandbox.fs.placement(puppet.right.pid)).toMatchObject({ _tag: 'Right', right: { pids: `${prefix}/job`, cpuset: `${prefix}/job` } })
  expect(host.cgroupOf(task, host.hierarchy('cpuset')!).path).toBe(`${prefix}/job`)
})

it('moves all or nothing: after any outcome but Indeterminate, every thread is either at every destination or where it was', async () => {
  let round = 0
  await fc.assert(
    fc.asyncProperty(
      fc.record({
        processes: fc.array(fc.nat({ max: 2 }), { minLength: 1, maxLength: 3 }), // extra threads per process
        mode: fc.constantFrom('process' as const, 'thread' as const),
        cpusetReady: fc.boolean(), // an empty v1 cpuset refuses with ENOSPC
        useCpuset: fc.boolean(),
        gone: fc.boolean(), // one PID has exited before the move
        exited: fc.constantFrom('skip' as const, 'fail' as const),
      }),
      async ({ processes, mode, cpusetReady, useCpuset, gone, exited }) => {
        const dir = `/r${round++}`
        const hierarchies = useCpuset ? ['pids', 'cpuset'] : ['pids']
        for (const hierarchy of hierarchies) expect(sandbox.fs.mkdirSync(sandbox.path(hierarchy, dir))).toEqual(E.right(undefined))
        if (useCpuset && cpusetReady)
          for (const [file, value] of [['cpuset.cpus', '0'], ['cpuset.mems', '0']] as const) expect(sandbox.fs.writeSync(sandbox.path('cpuset', `${dir}/${file}`), value)).toEqual(E.right(undefined))
        const puppets: Array<Puppet> = []
        const tids: Array<{ pid: number; tid: number }> = []
        for (const extra of processes) {
          const puppet = await sandbox.spawn()
          if (E.isLeft(puppet)) throw new Error(puppet.left.message)
          puppets.push(puppet.right)
          tids.push({ pid: puppet.right.pid, tid: puppet.right.pid })
          for (let i = 0; i < extra; i++) tids.push({ pid: puppet.right.pid, tid: Number((await puppet.right.command('thread')).value) })
        }
        const pidsToMove = mode === 'process' ? puppets.map((puppet) => puppet.pid) : tids.map((entry) => entry.tid)
        if (gone) await puppets[0]!.exit()
        const live = tids.filter((entry) => !gone || entry.pid !== puppets[0]!.pid)
        const where = (entry: { pid: number; tid: number }) => E.getOrElseW(() => ({}) as Record<string, string>)(sandbox.fs.placement(entry.pid, entry.tid))
        const before = live.map(where)
        const to = hierarchies.map((hierarchy) => ({ hierarchy, path: `/${sandbox.prefix}${dir}` }))
        const outcome = await moveTasks(sandbox.fs, { mode, pids: pidsToMove, to }, { retry: { exited, justForked: { attempts: 1, delayMs: 0 } } })()
        const after = live.map(where)
        expect(outcome._tag).not.toBe('Indeterminate')
        if (outcome._tag === 'Committed') {
          for (const placement of after) for (const ref of to) expect(placement[ref.hierarchy]).toBe(ref.path)
          expect(outcome.skipped).toEqual(gone ? [puppets[0]!.pid, ...(mode === 'thread' ? tids.filter((e) => e.pid === puppets[0]!.pid).slice(1).map((e) => e.tid) : [])] : [])
        } else {
          expect(after).toEqual(before)
          const refusedByCpuset = useCpuset && !cpusetReady && live.length > 0
          const refusedAsGone = gone && exited === 'fail'
          expect(refusedByCpuset || refusedAsGone).toBe(true)
        }
        if (useCpuset && !cpusetReady && live.length > 0) expect(outcome._tag).toBe('Aborted')
        for (const puppet of puppets) await puppet.exit()
      },
    ),
    { numRuns: 15 },
  )
})
