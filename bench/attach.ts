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
import { collectGarbage, measureAlternating, ratio, report, type Case } from './harness.ts'

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

// A contender that ping-pongs one task between /a and /b.
const pingPong = (name: string, host: Host, pid: number, extra?: Record<string, number | string>): Case => {
  const a = { mode: 'thread' as const, pid, to: { hierarchy: 'h', path: '/a' } }
  const b = { mode: 'thread' as const, pid, to: { hierarchy: 'h', path: '/b' } }
  return { name, op: (i) => void must(host.attachSync(i % 2 === 0 ? a : b)), opsPerSample: 20_000, ...(extra === undefined ? {} : { extra }) }
}

const withCgroups = (host: Host): void => {
  must(host.mkdirSync({ hierarchy: 'h', path: '/a' }))
  must(host.mkdirSync({ hierarchy: 'h', path: '/b' }))
}

const heapAfterGc = (): number => {
  collectGarbage()
  return process.memoryUsage().heapUsed
}

// A host with `cgroups` cgroups and `tasks` tasks spread over them; the
// memory each added cgroup and task took.
const populated = (cgroups: number, tasks: number): { host: Host; memory: Record<string, number> } => {
  const host = makeHost(4)
  withCgroups(host)
  const before = heapAfterGc()
  for (let i = 0; i < cgroups; i++) must(host.mkdirSync({ hierarchy: 'h', path: `/g${i}` }))
  const afterCgroups = heapAfterGc()
  for (let i = 0; i < tasks; i++) {
    const task = host.spawn()
    must(host.attachSync({ mode: 'thread', pid: task.tid, to: { hierarchy: 'h', path: `/g${i % cgroups}` } }))
  }
  const afterTasks = heapAfterGc()
  return {
    host,
    memory: { cgroups, tasks, bytesPerCgroup: Math.round((afterCgroups - before) / cgroups), bytesPerTask: Math.round((afterTasks - afterCgroups) / tasks) },
  }
}

export const run = (): void => {
  const four = makeHost(4)
  withCgroups(four)
  const byObject = makeHost(4)
  withCgroups(byObject)
  const objectTask = byObject.spawn()
  const [objectA, objectB] = [byObject.hierarchy('h')!.lookup('/a')!, byObject.hierarchy('h')!.lookup('/b')!]
  const quiet = makeHost(4)
  withCgroups(quiet)
  quiet.trace.enabled = false
  const bare = makeHost(0)
  withCgroups(bare)

  // A process of 1,000 threads moved as one transaction.
  const big = makeHost(4)
  withCgroups(big)
  const leader = big.spawn()
  for (let i = 1; i < 1000; i++) must(big.forkSync(leader.tid, { thread: true }))
  const bigA = { mode: 'process' as const, pid: leader.tid, to: { hierarchy: 'h', path: '/a' } }
  const bigB = { mode: 'process' as const, pid: leader.tid, to: { hierarchy: 'h', path: '/b' } }

  // Hosts of growing size, each with its own mover.
  const sizes = ([[100, 1_000], [1_000, 10_000], [10_000, 100_000]] as const).map(([cgroups, tasks]) => ({ cgroups, tasks, ...populated(cgroups, tasks) }))

  const rows = measureAlternating([
    pingPong('attach thread, 4 sync subsystems', four, four.spawn().tid),
    { name: 'attachTask thread, 4 sync subsystems', op: (i) => void must(byObject.attachTaskSync(objectTask, i % 2 === 0 ? objectA : objectB)), opsPerSample: 20_000 },
    pingPong('attach thread, 4 sync subsystems, trace off', quiet, quiet.spawn().tid),
    pingPong('attach thread, no subsystems', bare, bare.spawn().tid),
    { name: 'attach process of 1,000 threads', op: (i) => void must(big.attachSync(i % 2 === 0 ? bigA : bigB)), opsPerSample: 40 },
    ...sizes.map(({ cgroups, tasks, host }) =>
      pingPong(`attach thread, host of ${tasks.toLocaleString('en-US')} tasks / ${cgroups.toLocaleString('en-US')} cgroups`, host, host.spawn().tid, { tasks, cgroups }),
    ),
  ])
  const processRow = rows.find((row) => row.name === 'attach process of 1,000 threads')!
  rows[rows.indexOf(processRow)] = { ...processRow, extra: { 'per thread': `${(processRow.medianNs / 1000).toFixed(1)} ns` } }

  const ratios = [
    ratio(rows, 'attach thread, 4 sync subsystems', 'attach thread, no subsystems', '4 subsystems / no subsystems'),
    ratio(rows, 'attach thread, 4 sync subsystems, trace off', 'attach thread, 4 sync subsystems', 'trace off / trace on'),
    ratio(rows, 'attachTask thread, 4 sync subsystems', 'attach thread, 4 sync subsystems', 'by object / by pid and path'),
    ratio(rows, 'attach thread, host of 100,000 tasks / 10,000 cgroups', 'attach thread, host of 1,000 tasks / 100 cgroups', '100k-task host / 1k-task host'),
  ]
  const memory = sizes.map((size) => size.memory)
  console.table(memory)
  report('attach', rows, ratios, { memory, samples: 'interleaved: one sample of each contender in turn' })
}
