/**
 * The built-in controllers together: {@link builtinSubsystems} returns them
 * in the kernel's subsystem-id order (cpuset, cpu, memory, freezer, pids),
 * and {@link createHost} builds a {@link Host} with them mounted either as
 * separate v1 hierarchies (like the test machine: `cpuset`, `cpu,cpuacct`,
 * `memory`, `freezer`, `pids`) or on one v2 hierarchy `unified`.
 *
 * @module builtin
 */
import * as E from 'fp-ts/lib/Either.js'
import * as t from 'io-ts'
import { decode, Host, VirtualClock, type CgtxError, type Clock, type Subsystem } from '@cgtx/core'
import { makeCpu, type CpuSubsystem } from './cpu/index.ts'
import { makeCpuset, type CpusetSubsystem } from './cpuset/index.ts'
import { freezer, type FreezerSubsystem } from './freezer/index.ts'
import { memory, type MemorySubsystem } from './memory/index.ts'
import { pids, type PidsSubsystem } from './pids/index.ts'

/** Options of the built-in controllers. */
export interface BuiltinOptions {
  /** CPUs and memory nodes of the machine (default 4 and 1, the host's defaults). */
  readonly cpus?: number
  readonly mems?: number
  /** cpu: model RT group scheduling (v1 RT runtime files and the RT attach check). */
  readonly rtGroupSched?: boolean
  /** cpu: the clock bandwidth periods are measured on. */
  readonly clock?: Clock
}

/** The five built-in controllers, by name. */
export interface Builtins {
  readonly cpuset: CpusetSubsystem
  readonly cpu: CpuSubsystem
  readonly memory: MemorySubsystem
  readonly freezer: FreezerSubsystem
  readonly pids: PidsSubsystem
}

/** The five controllers, in subsystem-id order (the order callbacks run in). */
export type BuiltinList = readonly [CpusetSubsystem, CpuSubsystem, MemorySubsystem, FreezerSubsystem, PidsSubsystem]

/** Fresh built-in controllers, in subsystem-id order; malformed options are a BadArgument. */
export const builtinSubsystems = (options: unknown = {}): E.Either<CgtxError, BuiltinList> =>
  E.map(() => makeBuiltins(options as BuiltinOptions))(decode(BuiltinOptionsCodec, options, 'options'))

const BuiltinOptionsCodec = t.partial(
  {
    cpus: t.refinement(t.Int, (n) => n >= 1 && n <= 4096, 'Int in 1..4096'),
    mems: t.refinement(t.Int, (n) => n >= 1 && n <= 1024, 'Int in 1..1024'),
    rtGroupSched: t.boolean,
    clock: t.type({ now: t.Function, setTimer: t.Function, sleep: t.Function }, 'Clock'),
  },
  'BuiltinOptions',
)

/** @internal The controllers for options already typed (the package's own callers). */
export const makeBuiltins = (options: BuiltinOptions): BuiltinList => [
  makeCpuset({ ...(options.cpus === undefined ? {} : { cpus: options.cpus }), ...(options.mems === undefined ? {} : { mems: options.mems }) }),
  makeCpu({ ...(options.rtGroupSched === undefined ? {} : { rtGroupSched: options.rtGroupSched }), ...(options.clock === undefined ? {} : { clock: options.clock }) }),
  memory(),
  freezer(),
  pids(),
]

/** The v1 mount names of the built-ins in a {@link createHost} v1 layout. */
export const v1Mounts = { cpuset: 'cpuset', cpu: 'cpu,cpuacct', memory: 'memory', freezer: 'freezer', pids: 'pids' } as const

const HostOptions = t.intersection([
  t.type({ layout: t.keyof({ v1: null, v2: null }) }),
  t.partial({
    cpus: t.refinement(t.Int, (n) => n >= 1 && n <= 4096, 'Int in 1..4096'),
    mems: t.refinement(t.Int, (n) => n >= 1 && n <= 1024, 'Int in 1..1024'),
    rtGroupSched: t.boolean,
    abortOrder: t.keyof({ reverse: null, kernel: null }),
    extra: t.array(t.type({ name: t.string, createState: t.Function })),
  }),
])

/** What {@link createHost} takes. */
export interface HostOptions extends BuiltinOptions {
  /** `v1`: one hierarchy per controller; `v2`: all on `unified`. */
  readonly layout: 'v1' | 'v2'
  /** Callback order on abort (see core). */
  readonly abortOrder?: 'reverse' | 'kernel'
  /**
   * More controllers, after the built-ins in id order; on v1 each gets its
   * own hierarchy named after it, on v2 they join `unified`.
   */
  readonly extra?: ReadonlyArray<Subsystem<any>>
}

/**
 * A host with the built-in controllers (and `extra` ones) mounted in the
 * chosen layout, on a {@link VirtualClock} unless a clock is given, and the
 * controllers by name. On v2 the root enables every controller for its
 * children (`cgroup.subtree_control`).
 */
export const createHost = (options: HostOptions): E.Either<CgtxError, { readonly host: Host; readonly builtins: Builtins; readonly clock: Clock }> => {
  const decoded = decode(HostOptions, options, 'options')
  if (E.isLeft(decoded)) return decoded
  const clock = options.clock ?? new VirtualClock()
  const list = makeBuiltins({ ...options, clock })
  const [cpusetController, cpuController, memoryController, freezerController, pidsController] = list
  const extra = options.extra ?? []
  const subsystems: ReadonlyArray<Subsystem<any>> = [...list, ...extra]
  const hierarchies =
    options.layout === 'v1'
      ? [
          ...list.map((subsystem) => ({ name: v1Mounts[subsystem.name as keyof typeof v1Mounts], version: 'v1' as const, subsystems: [subsystem.name] })),
          ...extra.map((subsystem) => ({ name: subsystem.name, version: 'v1' as const, subsystems: [subsystem.name] })),
        ]
      : [{ name: 'unified', version: 'v2' as const, subsystems: subsystems.map((subsystem) => subsystem.name) }]
  const created = Host.create({
    subsystems,
    hierarchies,
    clock,
    ...(options.cpus === undefined ? {} : { cpus: options.cpus }),
    ...(options.mems === undefined ? {} : { mems: options.mems }),
    ...(options.abortOrder === undefined ? {} : { abortOrder: options.abortOrder }),
  })
  if (E.isLeft(created)) return created
  const host = created.right
  if (options.layout === 'v2') {
    const root = host.hierarchy('unified')!.root
    subsystems.forEach((_, id) => root.subtreeControl.add(id))
  }
  return E.right({
    host,
    clock,
    builtins: { cpuset: cpusetController, cpu: cpuController, memory: memoryController, freezer: freezerController, pids: pidsController },
  })
}
