/**
 * `pnpm bench attach`: the core attach transaction.
 *
 * - single-thread attach through 4 synchronous test subsystems (target ≤ 1 µs
 *   per migration), against a host with no subsystems (the core's own cost)
 *   and one with the trace off, measured in the same run;
 * - a process attach of 1,000 threads (per-thread cost);
 * - the single-thread attach as the host grows to 100,000 tasks in 10,000 cgroups;
 * - memory per task and per cgroup.
 */
import * as E from 'fp-ts/lib/Either.js'
import { Host, type Subsystem } from '@cgtx/core'
import { measure, ratio, report, type Measurement } from './harness.ts'

// A synchronous controller that precharges the destination in prepareSleep
// and uncharges the source at commit: the work a real counting controller does.
const counting = (name: string): Subsystem<{ tasks: number }> => ({
  name,
  createState: () => ({ tasks: 0 }),
  prepareSleep(ctx) {
    for (const entry of ctx.tasks) ctx.to(entry).state.tasks++
  },
  abortSleep(ctx) {
    for (const entry of ctx.tasks) ctx.to(entry).state.tasks--
  },
  commit(ctx) {
    for (const entry of ctx.tasks) ctx.from(entry).state.tasks--
  },
})

const makeHost = (subsystems: number): Host => {
  const names = Array.from({ length: subsystems }, (_, i) => `s${i}`)
  const created = Host.create({ subsystems: names.map(counting), hierarchies: [{ name: 'h', subsystems: names }] })
  if (E.isLeft(created)) throw new Error(created.left.message)
  return created.right
}

const must = <A>(result: E.Either<{ message: string }, A>): A => {
  if (E.isLeft(result)) throw new Error(result.left.message)
  return result.right
}

// Ping-pongs one task between /a and /b; returns the measurement.
const pingPong = (name: string, host: Host, pid: number, extra?: Record<string, number | string>): Measurement => {
  const a = { mode: 'thread' as const, pid, to: { hierarchy: 'h', path: '/a' } }
  const b = { mode: 'thread' as const, pid, to: { hierarchy: 'h', path: '/b' } }
  return measure(name, (i) => void must(host.attachSync(i % 2 === 0 ? a : b)), { opsPerSample: 20_000, samples: 15, ...(extra === undefined ? {} : { extra }) })
}

const withCgroups = (host: Host): void => {
  must(host.mkdirSync({ hierarchy: 'h', path: '/a' }))
  must(host.mkdirSync({ hierarchy: 'h', path: '/b' }))
}

const heapAfterGc = (): number => {
  globalThis.gc?.()
  globalThis.gc?.()
  return process.memoryUsage().heapUsed
}

export const run = (): void => {
  const rows: Array<Measurement> = []

  const four = makeHost(4)
  withCgroups(four)
  rows.push(pingPong('attach thread, 4 sync subsystems', four, four.spawn().tid))

  // The same moves by objects (no pid and path resolution).
  const byObject = makeHost(4)
  withCgroups(byObject)
  const objectTask = byObject.spawn()
  const [objectA, objectB] = [byObject.hierarchy('h')!.lookup('/a')!, byObject.hierarchy('h')!.lookup('/b')!]
  rows.push(measure('attachTask thread, 4 sync subsystems', (i) => void must(byObject.attachTaskSync(objectTask, i % 2 === 0 ? objectA : objectB)), { opsPerSample: 20_000, samples: 15 }))

  const quiet = makeHost(4)
  withCgroups(quiet)
  quiet.trace.enabled = false
  rows.push(pingPong('attach thread, 4 sync subsystems, trace off', quiet, quiet.spawn().tid))

  const bare = makeHost(0)
  withCgroups(bare)
  rows.push(pingPong('attach thread, no subsystems', bare, bare.spawn().tid))

  // A process of 1,000 threads moved as one transaction.
  const big = makeHost(4)
  withCgroups(big)
  const leader = big.spawn()
  for (let i = 1; i < 1000; i++) must(big.forkSync(leader.tid, { thread: true }))
  const a = { mode: 'process' as const, pid: leader.tid, to: { hierarchy: 'h', path: '/a' } }
  const b = { mode: 'process' as const, pid: leader.tid, to: { hierarchy: 'h', path: '/b' } }
  const processRow = measure('attach process of 1,000 threads', (i) => void must(big.attachSync(i % 2 === 0 ? a : b)), { opsPerSample: 50, samples: 11, warmup: 20 })
  rows.push({ ...processRow, extra: { 'per thread': `${(processRow.medianNs / 1000).toFixed(1)} ns` } })

  // The same single-thread attach as the host grows; memory per task and cgroup.
  const growing = makeHost(4)
  withCgroups(growing)
  const mover = growing.spawn().tid
  let cgroups = 0
  let tasks = 0
  const memory: Array<Record<string, number>> = []
  for (const [targetCgroups, targetTasks] of [[100, 1_000], [1_000, 10_000], [10_000, 100_000]] as const) {
    const before = heapAfterGc()
    const cgroupsBefore = cgroups
    for (; cgroups < targetCgroups; cgroups++) must(growing.mkdirSync({ hierarchy: 'h', path: `/g${cgroups}` }))
    const afterCgroups = heapAfterGc()
    const tasksBefore = tasks
    for (; tasks < targetTasks; tasks++) {
      const task = growing.spawn()
      must(growing.attachSync({ mode: 'thread', pid: task.tid, to: { hierarchy: 'h', path: `/g${tasks % targetCgroups}` } }))
    }
    const afterTasks = heapAfterGc()
    memory.push({
      cgroups: targetCgroups,
      tasks: targetTasks,
      bytesPerCgroup: Math.round((afterCgroups - before) / (targetCgroups - cgroupsBefore)),
      bytesPerTask: Math.round((afterTasks - afterCgroups) / (targetTasks - tasksBefore)),
    })
    rows.push(pingPong(`attach thread, host of ${targetTasks.toLocaleString('en-US')} tasks / ${targetCgroups.toLocaleString('en-US')} cgroups`, growing, mover, { tasks: targetTasks, cgroups: targetCgroups }))
  }

  const ratios = [
    ratio(rows, 'attach thread, 4 sync subsystems', 'attach thread, no subsystems', '4 subsystems / no subsystems'),
    ratio(rows, 'attach thread, 4 sync subsystems, trace off', 'attach thread, 4 sync subsystems', 'trace off / trace on'),
    ratio(rows, 'attachTask thread, 4 sync subsystems', 'attach thread, 4 sync subsystems', 'by object / by pid and path'),
    ratio(rows, 'attach thread, host of 100,000 tasks / 10,000 cgroups', 'attach thread, host of 1,000 tasks / 100 cgroups', '100k-task host / 1k-task host'),
  ]
  console.table(memory)
  report('attach', rows, ratios, { memory, gc: typeof globalThis.gc === 'function' })
}
