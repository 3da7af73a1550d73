/**
 * Kit configurations of the built-in controllers: what they are checked
 * with in this package's tests and by `cgtx check`, and worked examples of
 * writing arbitraries, equivalences and accounting models.
 *
 * @module testing/builtins
 */
import * as E from 'fp-ts/lib/Either.js'
import * as fc from 'fast-check'
import { VirtualClock, type Cgroup, type Host, type Subsystem } from '@cgtx/core'
import { makeCpu, type CpuState, type CpuSubsystem } from '../cpu/index.ts'
import { makeCpuset, type CpusetState } from '../cpuset/index.ts'
import { freezer, type FreezerState } from '../freezer/index.ts'
import { memory, type MemoryState, type MemorySubsystem } from '../memory/index.ts'
import { pids, type PidsState } from '../pids/index.ts'
import type { ConfigWrite, KitAction, KitConfig } from './config.ts'

const writesOf = (files: Readonly<Record<string, ReadonlyArray<string>>>): fc.Arbitrary<ConfigWrite> =>
  fc.oneof(...Object.entries(files).map(([file, values]) => fc.record({ file: fc.constant(file), value: fc.constantFrom(...values) })))

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b)

/** Tasks and zombies whose cgroup in `cgroup`'s hierarchy is in its subtree. */
export const tasksBelow = (cgroup: Cgroup): number => {
  let count = 0
  for (const at of cgroup.subtree()) for (const cssSet of at.cssSets) count += cssSet.tasks.size + cssSet.zombies.size
  return count
}

const pidsConfig: KitConfig<PidsState> = {
  factory: pids,
  arbitraries: {
    writes: writesOf({ 'pids.max': ['max', '0', '1', '2', '3', '-1', 'abc', '4194305', ' 2', '0x2', '99999999999999999999', '\n', ''] }),
  },
  // The watermark may keep a transient charge after an abort, as in the kernel.
  equivalence: (a, b) =>
    a.counter.usage === b.counter.usage && a.counter.limit === b.counter.limit && a.forkFailures === b.forkFailures && a.maxEvents === b.maxEvents && a.maxEventsLocal === b.maxEventsLocal,
  capabilities: { accounting: { usage: (state) => state.counter.usage, expected: (cgroup) => tasksBelow(cgroup), releasedOnReap: true } },
}

const charge = (bytes: number): KitAction<MemoryState> => ({
  name: `charge ${bytes} bytes`,
  run: (subsystem, task) => (subsystem as MemorySubsystem).charge(task, bytes),
})

const uncharge: KitAction<MemoryState> = {
  name: 'uncharge the oldest charge of the process',
  run: (subsystem, task) => {
    const memory = subsystem as MemorySubsystem
    const oldest = memory.chargesOf(task)[0]
    return oldest === undefined ? E.right(undefined) : memory.uncharge(oldest)
  },
}

const chargedBelow = (cgroup: Cgroup, host: Host, subsystem: Subsystem<MemoryState>): number => {
  const below = new Set(cgroup.subtree())
  const groups = new Set([...host.tasks()].map((task) => task.group))
  let bytes = 0
  for (const group of groups) for (const one of (subsystem as MemorySubsystem).chargesOf(group.leader)) if (below.has(one.css.cgroup)) bytes += one.bytes
  return bytes
}

const memoryConfig: KitConfig<MemoryState> = {
  factory: memory,
  arbitraries: {
    writes: writesOf({
      'memory.max': ['max', '4096', '8K', '12K', '0', '1M', 'abc', '4097', '\n', '-1'],
      'memory.high': ['max', '4096', '8K', 'x'],
      'memory.limit_in_bytes': ['-1', '4096', '8K', '16K', '1M', 'abc', 'max'],
      'memory.move_charge_at_immigrate': ['0', '1', '3', '4', '-1', 'x'],
    }),
    actions: fc.constantFrom(charge(4096), charge(8192), uncharge, uncharge),
  },
  // failcnt and the watermark record a refused precharge, as in the kernel.
  equivalence: (a, b) =>
    a.counter.usage === b.counter.usage && a.counter.limit === b.counter.limit && a.high === b.high && a.moveChargeAtImmigrate === b.moveChargeAtImmigrate && same(a.events, b.events) && same(a.eventsLocal, b.eventsLocal),
  capabilities: { accounting: { usage: (state) => state.counter.usage, expected: chargedBelow, releasedOnReap: true } },
}

const cpuConfig: KitConfig<CpuState> = {
  factory: () => makeCpu({ rtGroupSched: true, clock: new VirtualClock() }),
  arbitraries: {
    writes: writesOf({
      'cpu.weight': ['1', '100', '10000', '0', '10001', 'abc'],
      'cpu.max': ['max', 'max 100000', '50000 100000', '1000 1000', '999 100000', '5000', 'x y', '10000 2000000'],
      'cpu.shares': ['1', '2', '1024', '262145', '-5', ' 7'],
      'cpu.cfs_quota_us': ['-1', '50000', '1000', '0', '-100', '200000'],
      'cpu.cfs_period_us': ['100000', '50000', '1000', '999', '1000001'],
      'cpu.rt_runtime_us': ['0', '10000', '100000', '-1', '950000'],
    }),
    actions: fc.constantFrom<KitAction<CpuState>>(
      { name: 'run 1 ms', run: (subsystem, task) => (subsystem as CpuSubsystem).account(task, 1_000_000) },
      { name: 'become SCHED_FIFO', run: (_subsystem, task, host) => host.setPolicy(task.tid, 'fifo') },
    ),
  },
  equivalence: (a, b) => same(a, b),
  capabilities: { accounting: { usage: (state) => state.usageNs } },
}

const cpusetConfig: KitConfig<CpusetState> = {
  factory: () => makeCpuset({}),
  arbitraries: {
    writes: writesOf({
      'cpuset.cpus': ['0', '1', '0-3', '2-3', '\n', 'N', 'all', '5', 'abc', '0-3:1/2', '1,3'],
      'cpuset.mems': ['0', '\n', '1'],
      'cpuset.cpu_exclusive': ['0', '1'],
      'cpuset.mem_exclusive': ['0', '1'],
    }),
  },
  equivalence: (a, b) => same(a, b),
}

const freezerConfig: KitConfig<FreezerState> = {
  factory: freezer,
  arbitraries: { writes: writesOf({ 'freezer.state': ['FROZEN', 'THAWED', 'FREEZING', 'x'], 'cgroup.freeze': ['0', '1', '2', 'x'] }) },
  equivalence: (a, b) => same(a, b),
}

/** Kit configurations of the five built-in controllers, by name. */
export const builtinKitConfigs = {
  pids: pidsConfig,
  memory: memoryConfig,
  cpu: cpuConfig,
  cpuset: cpusetConfig,
  freezer: freezerConfig,
} as const
