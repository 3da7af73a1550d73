/**
 * `pnpm bench subsystems`: the built-in controllers on the attach path and
 * the hierarchical charge.
 *
 * - a single-thread attach through all five built-in controllers (cpuset,
 *   cpu, memory, freezer, pids on one v2 hierarchy; target median ≤ 1.5 µs),
 *   against a bare host with no controllers measured in the same run, and the
 *   same five co-mounted on one v1 hierarchy, and five subsystems without
 *   callbacks (what the core itself spends per bound subsystem);
 * - a memory charge + uncharge pair at depth 5 (target ≤ 200 ns), against
 *   the bare HierarchicalCounter tryCharge + uncharge at the same depth.
 */
import * as E from 'fp-ts/lib/Either.js'
import { Host, VirtualCgroupFs, VirtualClock } from '@cgtx/core'
import { builtinSubsystems, createHost, HierarchicalCounter } from '@cgtx/subsystems'
import { measure, measureAlternating, ratio, report, type Case } from './harness.ts'

const must = <A>(result: E.Either<{ message: string }, A>): A => {
  if (E.isLeft(result)) throw new Error(result.left.message)
  return result.right
}

// Ping-pongs a single-thread process between /a and /b of `hierarchy`.
const pingPong = (name: string, host: Host, hierarchy: string): Case => {
  must(host.mkdirSync({ hierarchy, path: '/a' }))
  must(host.mkdirSync({ hierarchy, path: '/b' }))
  const pid = host.spawn('bench').tid
  const a = { mode: 'process' as const, pid, to: { hierarchy, path: '/a' } }
  const b = { mode: 'process' as const, pid, to: { hierarchy, path: '/b' } }
  return { name, op: (i) => void must(host.attachSync(i % 2 === 0 ? a : b)), opsPerSample: 20_000 }
}

export const run = (): void => {
  const bare = must(Host.create({ hierarchies: [{ name: 'h', version: 'v2' }] }))

  // The core's own cost of five bound subsystems: state per cgroup, no callbacks.
  const empty = ['e0', 'e1', 'e2', 'e3', 'e4'].map((name) => ({ name, createState: () => null }))
  const inert = must(Host.create({ subsystems: empty, hierarchies: [{ name: 'h', version: 'v2', subsystems: empty.map((s) => s.name) }] }))
  empty.forEach((_, id) => inert.hierarchy('h')!.root.subtreeControl.add(id))

  const { host: v2 } = must(createHost({ layout: 'v2' }))

  const builtins = must(builtinSubsystems({ clock: new VirtualClock() }))
  const v1 = must(Host.create({ subsystems: [...builtins], hierarchies: [{ name: 'all', version: 'v1', subsystems: builtins.map((s) => s.name) }] }))
  const v1Move = pingPong('attach 1-thread process, 5 built-in controllers (v1, one hierarchy)', v1, 'all')
  // A v1 cpuset child starts empty (attaching fails ENOSPC); give both the machine.
  const fs = new VirtualCgroupFs(v1)
  for (const path of ['/all/a', '/all/b']) {
    must(fs.writeSync(`${path}/cpuset.cpus`, '0-3'))
    must(fs.writeSync(`${path}/cpuset.mems`, '0'))
  }

  const rows = measureAlternating([
    pingPong('attach 1-thread process, bare host (no controllers)', bare, 'h'),
    pingPong('attach 1-thread process, 5 subsystems without callbacks (v2)', inert, 'h'),
    pingPong('attach 1-thread process, 5 built-in controllers (v2)', v2, 'unified'),
    v1Move,
  ])

  // Charges at depth 5: /l1/l2/l3/l4/l5 (six counters with the root's).
  const { host: deep, builtins: controllers } = must(createHost({ layout: 'v2' }))
  let path = ''
  for (let level = 1; level <= 5; level++) {
    path += `/l${level}`
    must(deep.mkdirSync({ hierarchy: 'unified', path }))
    // Enable memory for the next level (not on the leaf, which holds the task).
    if (level < 5) deep.hierarchy('unified')!.lookup(path)!.subtreeControl.add(deep.subsystemId('memory'))
  }
  const task = deep.spawn('bench')
  must(deep.attachSync({ mode: 'process', pid: task.tid, to: { hierarchy: 'unified', path } }))
  rows.push(
    measure('memory charge + uncharge, depth 5', () => {
      const charge = controllers.memory.charge(task, 4096)
      if (charge._tag === 'Right') controllers.memory.uncharge(charge.right)
    }, { opsPerSample: 200_000, samples: 15, extra: { depth: 5 } }),
  )
  let counter = new HierarchicalCounter(undefined)
  for (let level = 1; level <= 5; level++) counter = new HierarchicalCounter(counter)
  rows.push(
    measure('HierarchicalCounter tryCharge + uncharge, depth 5', () => {
      if (counter.tryCharge(4096) === undefined) counter.uncharge(4096)
    }, { opsPerSample: 1_000_000, samples: 15, extra: { depth: 5 } }),
  )

  report('subsystems', rows, [
    ratio(rows, 'attach 1-thread process, 5 built-in controllers (v2)', 'attach 1-thread process, bare host (no controllers)', '5 controllers (v2) / bare host'),
    ratio(rows, 'attach 1-thread process, 5 built-in controllers (v1, one hierarchy)', 'attach 1-thread process, bare host (no controllers)', '5 controllers (v1) / bare host'),
    ratio(rows, 'attach 1-thread process, 5 subsystems without callbacks (v2)', 'attach 1-thread process, bare host (no controllers)', '5 inert subsystems / bare host'),
    ratio(rows, 'memory charge + uncharge, depth 5', 'HierarchicalCounter tryCharge + uncharge, depth 5', 'memory API / bare counter'),
  ])
}
