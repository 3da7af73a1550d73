/**
 * The kit's worlds and operations. A world is a host with the controller
 * under test, the companion after it on the same hierarchy, and an empty
 * hierarchy `other` (moves there must not call the controller); the
 * composed world adds the built-in controllers, with cpuset and pids on the
 * controller's hierarchy. Operations are plain data (so fast-check shrinks
 * them and reports print them) and run on a world; the laws run them on a
 * real world and a twin and compare.
 *
 * @module testing/world
 */
import * as E from 'fp-ts/lib/Either.js'
import * as fc from 'fast-check'
import { Host, VirtualCgroupFs, type Cgroup, type Css, type Subsystem, type Task, type TraceEvent } from '@cgtx/core'
import { makeBuiltins } from '../builtin.ts'
import { COMPANION, companion, faultPlans, type Companion, type FaultPlan } from './companion.ts'
import type { ConfigWrite, KitAction, KitConfig } from './config.ts'

/** Cgroups every world has, in the controller's hierarchy. */
export const PATHS: ReadonlyArray<string> = ['/', '/a', '/a/x', '/a/y', '/b']

/** How a world is built: the hierarchy version and the order aborts run in. */
export interface Setup {
  readonly layout: 'v1' | 'v2'
  readonly abortOrder: 'reverse' | 'kernel'
}

/** One host the kit drives. */
export interface World<S> {
  readonly host: Host
  readonly fs: VirtualCgroupFs
  readonly subject: Subsystem<S>
  readonly subjectId: number
  readonly companion: Companion
  /** Mount name of the controller's hierarchy. */
  readonly mount: string
  readonly layout: 'v1' | 'v2'
  readonly composed: boolean
}

/** An operation of a kit run. Indices pick tasks and cgroups modulo what exists. */
export type Op<S> =
  | { readonly kind: 'spawn' }
  | { readonly kind: 'fork'; readonly task: number; readonly thread: boolean }
  | { readonly kind: 'exit'; readonly task: number }
  | { readonly kind: 'reap'; readonly task: number }
  | { readonly kind: 'attach'; readonly task: number; readonly mode: 'thread' | 'process'; readonly to: number; readonly fault: FaultPlan | undefined }
  | { readonly kind: 'attachAll'; readonly from: number; readonly to: number; readonly fault: FaultPlan | undefined }
  | { readonly kind: 'stay'; readonly task: number }
  | { readonly kind: 'other'; readonly task: number; readonly to: number }
  | { readonly kind: 'write'; readonly cgroup: number; readonly write: ConfigWrite; readonly mount: string | undefined }
  | { readonly kind: 'action'; readonly task: number; readonly action: KitAction<S> }

/** How an operation ended. */
export interface OpResult {
  readonly ok: boolean
  readonly detail: string
  /** Trace events recorded while it ran. */
  readonly events: ReadonlyArray<TraceEvent>
}

const describeFault = (fault: FaultPlan | undefined): string => (fault === undefined ? '' : ` [companion: ${fault.kind} in ${fault.phase}]`)

/** A one-line description of an operation, for reports. */
export const describeOp = <S>(op: Op<S>): string => {
  switch (op.kind) {
    case 'spawn':
      return 'spawn (fork of init)'
    case 'fork':
      return `fork task#${op.task}${op.thread ? ' (thread)' : ''}`
    case 'exit':
      return `exit task#${op.task}`
    case 'reap':
      return `reap task#${op.task}`
    case 'attach':
      return `attach ${op.mode} task#${op.task} → ${PATHS[op.to]}${describeFault(op.fault)}`
    case 'attachAll':
      return `attach all of ${PATHS[op.from]} → ${PATHS[op.to]}${describeFault(op.fault)}`
    case 'stay':
      return `attach task#${op.task} to the cgroup it is in`
    case 'other':
      return `attach task#${op.task} → other:${PATHS[op.to]}`
    case 'write':
      return `write ${JSON.stringify(op.write.value)} to ${op.mount ?? ''}${PATHS[op.cgroup]}/${op.write.file}`
    case 'action':
      return `${op.action.name} by task#${op.task}`
  }
}

/** The shrunk operations of a failure, one per line. */
export const describeOps = <S>(ops: ReadonlyArray<Op<S>>): string => ops.map((op, i) => `  ${i + 1}. ${describeOp(op)}`).join('\n')

/** Builds a world; `composed` adds the built-in controllers. Throws only on a kit bug. */
export const buildWorld = <S>(config: KitConfig<S>, setup: Setup, composed: boolean): World<S> => {
  const { layout, abortOrder } = setup
  const subject = config.factory()
  const helper = companion()
  const builtins = composed ? makeBuiltins({ cpus: 2 }) : []
  const subsystems: ReadonlyArray<Subsystem<any>> = [subject, ...builtins, helper]
  const shared = [subject.name, ...(composed ? ['cpuset', 'pids'] : []), COMPANION]
  const mount = layout === 'v1' ? 'h' : 'unified'
  const hierarchies =
    layout === 'v1'
      ? [
          { name: 'h', version: 'v1', subsystems: shared },
          ...(composed ? ['cpu', 'memory', 'freezer'].map((name) => ({ name, version: 'v1', subsystems: [name] })) : []),
          { name: 'other', version: 'v1', subsystems: [] },
        ]
      : [
          { name: 'unified', version: 'v2', subsystems: subsystems.map((subsystem) => subsystem.name) },
          { name: 'other', version: 'v1', subsystems: [] },
        ]
  const created = Host.create({ subsystems, hierarchies, abortOrder, traceCapacity: 1 << 16, ...(composed ? { cpus: 2 } : {}) })
  if (E.isLeft(created)) throw new Error(`kit: cannot build a host: ${created.left.message}`)
  const host = created.right
  const fs = new VirtualCgroupFs(host)
  const enable = `${subsystems.map((subsystem) => `+${subsystem.name}`).join(' ')}\n`
  const must = (result: E.Either<{ message: string }, unknown>): void => {
    if (E.isLeft(result)) throw new Error(`kit: cannot build the tree: ${result.left.message}`)
  }
  if (layout === 'v2') must(fs.writeSync('/unified/cgroup.subtree_control', enable))
  for (const path of PATHS.slice(1)) {
    must(fs.mkdirSync(`/${mount}${path}`))
    must(fs.mkdirSync(`/other${path}`))
  }
  if (layout === 'v2') must(fs.writeSync('/unified/a/cgroup.subtree_control', enable))
  return { host, fs, subject, subjectId: host.subsystemId(subject.name), companion: helper, mount, layout, composed }
}

/** Live (not reaped) tasks other than init and kthreadd, by tid. */
export const userTasks = (host: Host): Array<Task> => [...host.tasks()].filter((task) => task.tid > 2).sort((a, b) => a.tid - b.tid)

const pick = <A>(items: ReadonlyArray<A>, index: number): A | undefined => (items.length === 0 ? undefined : items[index % items.length])

const cgroupAt = <S>(world: World<S>, index: number): Cgroup => world.host.hierarchy(world.mount)!.lookup(PATHS[index % PATHS.length]!)!

const outcome = (result: unknown): { ok: boolean; detail: string } => {
  if (typeof result === 'object' && result !== null && '_tag' in result) {
    const either = result as E.Either<{ message?: string }, unknown>
    if (E.isLeft(either)) return { ok: false, detail: either.left.message ?? String(either.left) }
    if (E.isRight(either)) return { ok: true, detail: 'ok' }
  }
  return { ok: true, detail: 'ok' }
}

/** Runs one operation; `withFault` arms the companion's plan for attaches. */
export const runOp = async <S>(world: World<S>, op: Op<S>, withFault: boolean): Promise<OpResult> => {
  const { host, fs } = world
  const start = host.trace.recorded
  const done = (result: { ok: boolean; detail: string }): OpResult => ({ ...result, events: host.trace.events().filter((event) => event.seq >= start) })
  const task = 'task' in op ? pick(userTasks(host), op.task) : undefined
  if ('task' in op && task === undefined) return done({ ok: false, detail: 'no task' })
  switch (op.kind) {
    case 'spawn':
      // A fork of init, so the new process is charged like any forked task.
      return done(outcome(host.forkSync(1)))
    case 'fork':
      return done(outcome(host.forkSync(task!.tid, { thread: op.thread })))
    case 'exit':
      return done(outcome(host.exitSync(task!.tid)))
    case 'reap':
      return done(outcome(host.reap(task!.tid)))
    case 'attach':
    case 'attachAll': {
      world.companion.plan = withFault ? op.fault : undefined
      try {
        const to = { hierarchy: world.mount, path: cgroupAt(world, op.to).path }
        const request = op.kind === 'attach' ? { mode: op.mode, pid: task!.tid, to } : { mode: 'all' as const, from: cgroupAt(world, op.from).path, to }
        return done(outcome(await host.attach(request)()))
      } finally {
        world.companion.plan = undefined
      }
    }
    case 'stay': {
      const here = task!.cssSet.cgroup(host.hierarchy(world.mount)!.index)
      return done(outcome(await host.attach({ mode: 'thread', pid: task!.tid, to: { hierarchy: world.mount, path: here.path } })()))
    }
    case 'other':
      return done(outcome(await host.attach({ mode: 'process', pid: task!.tid, to: { hierarchy: 'other', path: PATHS[op.to % PATHS.length]! } })()))
    case 'write': {
      const path = PATHS[op.cgroup % PATHS.length]!
      return done(outcome(await fs.write(`/${op.mount ?? world.mount}${path === '/' ? '' : path}/${op.write.file}`, op.write.value)()))
    }
    case 'action':
      try {
        return done(outcome(op.action.run(world.subject, task!, host)))
      } catch (error) {
        return done({ ok: false, detail: `threw: ${String(error)}` })
      }
  }
}

/** Attaches and writes that fail must leave no trace; the twin skips them. Other operations must agree. */
export const twinSkipsFailure = <S>(op: Op<S>): boolean => op.kind === 'attach' || op.kind === 'attachAll' || op.kind === 'write'

/** The controller's css at `path` of a world. */
export const cssAt = <S>(world: World<S>, path: string): Css<S> | undefined => {
  const cgroup = world.host.hierarchy(world.mount)!.lookup(path)
  return cgroup?.ownCss[world.subjectId] as Css<S> | undefined
}

/** Differences between two worlds as the author's equivalence and the tasks' observable fields see them; empty if none. */
export const differences = <S>(config: KitConfig<S>, real: World<S>, twin: World<S>): Array<string> => {
  const found: Array<string> = []
  for (const path of PATHS) {
    const a = cssAt(real, path)
    const b = cssAt(twin, path)
    if ((a === undefined) !== (b === undefined)) found.push(`${path}: css exists in one world only`)
    else if (a !== undefined && b !== undefined && !config.equivalence(a.state, b.state)) found.push(`${path}: state not equivalent: ${show(a.state)} vs ${show(b.state)}`)
  }
  const tasksA = userTasks(real.host)
  const tasksB = new Map(userTasks(twin.host).map((task) => [task.tid, task]))
  if (tasksA.length !== tasksB.size) found.push(`tasks: ${tasksA.length} vs ${tasksB.size}`)
  for (const task of tasksA) {
    const other = tasksB.get(task.tid)
    if (other === undefined) {
      found.push(`task ${task.tid} missing in the twin`)
      continue
    }
    const where = (at: Task, host: Host) => host.hierarchies.map((hierarchy) => at.cssSet.cgroup(hierarchy.index).path).join(',')
    if (where(task, real.host) !== where(other, twin.host)) found.push(`task ${task.tid}: in ${where(task, real.host)} vs ${where(other, twin.host)}`)
    if (task.state !== other.state || task.frozen !== other.frozen || JSON.stringify(task.affinity) !== JSON.stringify(other.affinity))
      found.push(`task ${task.tid}: state/frozen/affinity differ`)
  }
  return found
}

const show = (value: unknown): string => {
  try {
    return JSON.stringify(value, (_key, v: unknown) => (v === Number.POSITIVE_INFINITY ? 'Infinity' : typeof v === 'object' && v !== null && 'parent' in v ? { ...v, parent: undefined } : v)) ?? String(value)
  } catch {
    return String(value)
  }
}

/** Faults the controller caused (phase and description), from a run's trace events. */
export const faultsOf = (events: ReadonlyArray<TraceEvent>, name: string): Array<TraceEvent> =>
  events.filter((event) => event.subsystem === name && event.outcome === 'fault')

/** Options of the operation arbitrary. */
export interface OpsOptions {
  readonly faults: boolean
  readonly maxOperations: number
  /** Writes to built-in controllers' files (composition). */
  readonly builtinWrites: boolean
  /** Moves that must not call the controller. */
  readonly noops: boolean
}

const builtinWrite: fc.Arbitrary<{ readonly write: ConfigWrite; readonly mount: string }> = fc.oneof(
  fc.record({ write: fc.record({ file: fc.constant('cpuset.cpus'), value: fc.constantFrom('0', '1', '0-1', '\n') }), mount: fc.constant('h') }),
  fc.record({ write: fc.record({ file: fc.constant('cpuset.mems'), value: fc.constantFrom('0', '\n') }), mount: fc.constant('h') }),
  fc.record({ write: fc.record({ file: fc.constant('pids.max'), value: fc.constantFrom('0', '1', '2', 'max') }), mount: fc.constant('h') }),
)

/** Random operation sequences for a configuration. */
export const opsArbitrary = <S>(config: KitConfig<S>, options: OpsOptions): fc.Arbitrary<Array<Op<S>>> => {
  const index = fc.nat({ max: 15 })
  const target = fc.nat({ max: PATHS.length - 1 })
  const fault: fc.Arbitrary<FaultPlan | undefined> = options.faults ? fc.option(fc.constantFrom(...faultPlans), { nil: undefined, freq: 2 }) : fc.constant(undefined)
  const arbs: Array<fc.Arbitrary<Op<S>>> = [
    fc.constant({ kind: 'spawn' as const }),
    fc.record({ kind: fc.constant('fork' as const), task: index, thread: fc.boolean() }),
    fc.record({ kind: fc.constant('exit' as const), task: index }),
    fc.record({ kind: fc.constant('reap' as const), task: index }),
    fc.record({ kind: fc.constant('attach' as const), task: index, mode: fc.constantFrom('thread' as const, 'process' as const), to: target, fault }),
    fc.record({ kind: fc.constant('attach' as const), task: index, mode: fc.constantFrom('thread' as const, 'process' as const), to: target, fault }),
    fc.record({ kind: fc.constant('attachAll' as const), from: target, to: target, fault }),
  ]
  if (options.noops) {
    arbs.push(fc.record({ kind: fc.constant('stay' as const), task: index }))
    arbs.push(fc.record({ kind: fc.constant('other' as const), task: index, to: target }))
  }
  const writes = config.arbitraries.writes
  if (writes !== undefined) arbs.push(fc.record({ kind: fc.constant('write' as const), cgroup: target, write: writes, mount: fc.constant(undefined) }))
  if (options.builtinWrites) arbs.push(builtinWrite.map(({ write, mount }) => ({ kind: 'write' as const, cgroup: 1, write, mount })), fc.record({ kind: fc.constant('write' as const), cgroup: target, write: builtinWrite.map((w) => w.write), mount: fc.constant('h') }))
  const actions = config.arbitraries.actions
  if (actions !== undefined) {
    const action = fc.record({ kind: fc.constant('action' as const), task: index, action: actions })
    arbs.push(action, action)
  }
  return fc.array(fc.oneof(...arbs), { minLength: 1, maxLength: options.maxOperations })
}
