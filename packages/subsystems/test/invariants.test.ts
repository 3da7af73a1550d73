/**
 * Hierarchical invariants of the built-in controllers under random
 * sequences of moves, forks, exits, reaps, limit writes and resource use
 * (fc.commands model runs, v1 and v2 layouts):
 * - pids and memory: a parent's counter is at least the sum of its
 *   children's, and every counter equals what the tasks below it hold
 *   (charges are conserved across any sequence);
 * - cpu: usage is hierarchical and the root's is all the time accounted;
 * - cpuset: effective cpus are a subset of the parent's, and every
 *   live task's affinity is within its cpuset's effective cpus;
 * - freezer: a task is frozen exactly when its cgroup is freezing.
 */
import * as fc from 'fast-check'
import { describe, it } from 'vitest'
import type { Cgroup, Css, Host, Task, VirtualCgroupFs } from '@cgtx/core'
import { isSubset, type Builtins, type CpusetState, type FreezerState, type MemoryState, type PidsState, type CpuState } from '../src/index.ts'
import { tasksBelow } from '../src/testing/builtins.ts'
import { setup } from './helpers.ts'

interface Real {
  readonly host: Host
  readonly fs: VirtualCgroupFs
  readonly builtins: Builtins
  readonly layout: 'v1' | 'v2'
}

interface Model {
  /** CPU time accounted so far, in ns. */
  accounted: number
}

const PATHS = ['/', '/a', '/a/x', '/b']
const mountOf = (real: Real, controller: keyof typeof v1): string => (real.layout === 'v1' ? v1[controller] : 'unified')
const v1 = { cpuset: 'cpuset', cpu: 'cpu,cpuacct', memory: 'memory', freezer: 'freezer', pids: 'pids' } as const

const cssOf = <S>(real: Real, cgroup: Cgroup, name: keyof Builtins): Css<S> | undefined => cgroup.ownCss[real.host.subsystemId(name)] as Css<S> | undefined
const cgroups = (real: Real, name: keyof typeof v1): Array<Cgroup> => [...real.host.hierarchy(mountOf(real, name))!.root.subtree()]
const tasks = (host: Host): Array<Task> => [...host.tasks()].filter((task) => task.tid > 2).sort((a, b) => a.tid - b.tid)

const fail = (message: string): never => {
  throw new Error(message)
}

const checkInvariants = (real: Real, model: Model): void => {
  const { host, builtins } = real
  // pids and memory: hierarchical and conserved.
  for (const cgroup of cgroups(real, 'pids')) {
    const css = cssOf<PidsState>(real, cgroup, 'pids')
    if (css === undefined || cgroup.isRoot) continue
    const children = [...cgroup.children.values()].reduce((sum, child) => sum + (cssOf<PidsState>(real, child, 'pids')?.state.counter.usage ?? 0), 0)
    if (css.state.counter.usage < children) fail(`pids ${cgroup.path}: ${css.state.counter.usage} < children ${children}`)
    if (css.state.counter.usage !== tasksBelow(cgroup)) fail(`pids ${cgroup.path}: ${css.state.counter.usage} but ${tasksBelow(cgroup)} tasks below`)
  }
  const groups = new Set([...host.tasks()].map((task) => task.group))
  for (const cgroup of cgroups(real, 'memory')) {
    const css = cssOf<MemoryState>(real, cgroup, 'memory')
    if (css === undefined) continue
    const below = new Set(cgroup.subtree())
    let charged = 0
    for (const group of groups) for (const charge of builtins.memory.chargesOf(group.leader)) if (below.has(charge.css.cgroup)) charged += charge.bytes
    if (css.state.counter.usage !== charged) fail(`memory ${cgroup.path}: usage ${css.state.counter.usage}, charges below ${charged}`)
    const children = [...cgroup.children.values()].reduce((sum, child) => sum + (cssOf<MemoryState>(real, child, 'memory')?.state.counter.usage ?? 0), 0)
    if (css.state.counter.usage < children) fail(`memory ${cgroup.path}: below children`)
  }
  // cpu: hierarchical usage; the root has everything.
  for (const cgroup of cgroups(real, 'cpu')) {
    const css = cssOf<CpuState>(real, cgroup, 'cpu')
    if (css === undefined) continue
    const children = [...cgroup.children.values()].reduce((sum, child) => sum + (cssOf<CpuState>(real, child, 'cpu')?.state.usageNs ?? 0), 0)
    if (css.state.usageNs < children) fail(`cpu ${cgroup.path}: usage below children`)
    if (cgroup.isRoot && css.state.usageNs !== model.accounted) fail(`cpu root: ${css.state.usageNs} of ${model.accounted} ns`)
  }
  // cpuset: effective ⊆ parent's effective; affinity within the cpuset.
  for (const cgroup of cgroups(real, 'cpuset')) {
    const css = cssOf<CpusetState>(real, cgroup, 'cpuset')
    if (css === undefined) continue
    if (css.parent !== undefined && !isSubset(css.state.effectiveCpus, css.parent.state.effectiveCpus)) fail(`cpuset ${cgroup.path}: effective not within the parent's`)
  }
  for (const task of tasks(host)) {
    const cpuset = builtins.cpuset.cssOf(task)!
    // A zombie keeps the affinity it died with (only live tasks are rewritten, as css_task_iter sees them).
    if (task.state !== 'zombie' && task.affinity !== undefined && !isSubset(task.affinity, cpuset.state.effectiveCpus)) fail(`task ${task.tid}: affinity ${task.affinity} outside ${cpuset.cgroup.path}`)
    const freezer = builtins.freezer.cssOf(task)! as Css<FreezerState>
    if (task.state === 'running' && task.frozen !== (freezer.state.selfFreezing || freezer.state.parentFreezing)) fail(`task ${task.tid}: frozen ${task.frozen} in ${freezer.cgroup.path}`)
  }
}

type Command = fc.Command<Model, Real>

const pick = <A>(items: ReadonlyArray<A>, index: number): A | undefined => (items.length === 0 ? undefined : items[index % items.length])

const command = (label: string, act: (model: Model, real: Real) => void): Command => ({
  check: () => true,
  run: (model, real) => {
    act(model, real)
    checkInvariants(real, model)
  },
  toString: () => label,
})

const controllers = ['cpuset', 'cpu', 'memory', 'freezer', 'pids'] as const

const commands: ReadonlyArray<fc.Arbitrary<Command>> = [
  fc.constant(command('spawn', (_m, real) => void real.host.forkSync(1))),
  fc.record({ task: fc.nat(9), thread: fc.boolean() }).map(({ task, thread }) =>
    command(`fork #${task}${thread ? ' thread' : ''}`, (_m, real) => {
      const t = pick(tasks(real.host), task)
      if (t !== undefined) real.host.forkSync(t.tid, { thread })
    }),
  ),
  fc.nat(9).map((task) => command(`exit #${task}`, (_m, real) => void (pick(tasks(real.host), task) && real.host.exitSync(pick(tasks(real.host), task)!.tid)))),
  fc.nat(9).map((task) => command(`reap #${task}`, (_m, real) => void (pick(tasks(real.host), task) && real.host.reap(pick(tasks(real.host), task)!.tid)))),
  fc.record({ task: fc.nat(9), to: fc.nat(PATHS.length - 1), controller: fc.constantFrom(...controllers), mode: fc.constantFrom('process' as const, 'thread' as const) }).map(({ task, to, controller, mode }) =>
    command(`move ${mode} #${task} to ${controller}:${PATHS[to]}`, (_m, real) => {
      const t = pick(tasks(real.host), task)
      if (t !== undefined) real.host.attachSync({ mode, pid: t.tid, to: { hierarchy: mountOf(real, controller), path: PATHS[to]! } })
    }),
  ),
  fc.record({ to: fc.nat(PATHS.length - 1), file: fc.constantFrom(['pids', 'pids.max', ['0', '1', '3', 'max']], ['cpuset', 'cpuset.cpus', ['0', '1-2', '0-3', '\n']], ['cpuset', 'cpuset.mems', ['0', '\n']], ['freezer', 'freezer.state', ['FROZEN', 'THAWED']], ['freezer', 'cgroup.freeze', ['0', '1']], ['memory', 'memory.max', ['8K', 'max']], ['memory', 'memory.move_charge_at_immigrate', ['0', '1']]) as fc.Arbitrary<readonly [keyof typeof v1, string, ReadonlyArray<string>]>, value: fc.nat(3) }).map(({ to, file, value }) => {
    const [controller, name, values] = file
    const text = values[value % values.length]!
    return command(`write ${JSON.stringify(text)} to ${controller}:${PATHS[to]}/${name}`, (_m, real) => {
      const path = PATHS[to]!
      void real.fs.writeSync(`/${mountOf(real, controller)}${path === '/' ? '' : path}/${name}`, text)
    })
  }),
  fc.record({ task: fc.nat(9), bytes: fc.constantFrom(4096, 8192) }).map(({ task, bytes }) =>
    command(`charge ${bytes} by #${task}`, (_m, real) => {
      const t = pick(tasks(real.host), task)
      if (t !== undefined) real.builtins.memory.charge(t, bytes)
    }),
  ),
  fc.nat(9).map((task) =>
    command(`uncharge oldest of #${task}`, (_m, real) => {
      const t = pick(tasks(real.host), task)
      const oldest = t === undefined ? undefined : real.builtins.memory.chargesOf(t)[0]
      if (oldest !== undefined) real.builtins.memory.uncharge(oldest)
    }),
  ),
  fc.record({ task: fc.nat(9), ns: fc.integer({ min: 1, max: 50_000_000 }) }).map(({ task, ns }) =>
    command(`run #${task} for ${ns} ns`, (model, real) => {
      const t = pick(tasks(real.host), task)
      if (t !== undefined && t.state !== 'reaped' && real.builtins.cpu.account(t, ns)._tag === 'Right') model.accounted += ns
    }),
  ),
]

const world = (layout: 'v1' | 'v2'): Real => {
  const made = setup({ layout, cpus: 4 })
  for (const controller of controllers) {
    const mount = layout === 'v1' ? v1[controller] : 'unified'
    if (layout === 'v2' && controller !== 'cpuset') continue
    for (const path of PATHS.slice(1)) made.fs.mkdirSync(`/${mount}${path}`)
    if (layout === 'v2') made.fs.writeSync('/unified/a/cgroup.subtree_control', `${controllers.map((name) => `+${name}`).join(' ')}`)
  }
  if (layout === 'v1') {
    // Give the v1 cpusets something, so moves into them can succeed.
    for (const path of PATHS.slice(1)) {
      made.fs.writeSync(`/cpuset${path}/cpuset.cpus`, '0-3')
      made.fs.writeSync(`/cpuset${path}/cpuset.mems`, '0')
    }
  }
  return { host: made.host, fs: made.fs, builtins: made.builtins, layout }
}

describe('hierarchical invariants of the built-in controllers', () => {
  for (const layout of ['v1', 'v2'] as const) {
    it(`hold under any sequence of moves, forks, exits, writes and charges (${layout})`, () => {
      fc.assert(
        fc.property(fc.commands(commands as Array<fc.Arbitrary<Command>>, { size: '+1' }), (cmds) => {
          const real = world(layout)
          fc.modelRun(() => ({ model: { accounted: 0 }, real }), cmds)
        }),
        { numRuns: 150 },
      )
    })
  }
})
