/**
 * The conformance laws, as data: each has a name, a suite, a description
 * and a property built from the author's configuration. Most run a random
 * operation sequence on a real world and on a twin that sees only what
 * succeeded (a failed attach or write must leave nothing behind), comparing
 * them after every step with the author's equivalence; others read the
 * core's trace (which callbacks ran, which faulted) or check the accounting
 * model.
 *
 * @module testing/laws
 */
import * as E from 'fp-ts/lib/Either.js'
import * as fc from 'fast-check'
import type { AttachPhase, Css, Host, TraceEvent } from '@cgtx/core'
import type { DefinedSubsystem } from '../defineSubsystem.ts'
import { COMPANION, faultPlans, type FaultPlan } from './companion.ts'
import type { AccountingCapability, KitConfig } from './config.ts'
import {
  buildWorld,
  cssAt,
  describeOp,
  differences,
  faultsOf,
  opsArbitrary,
  PATHS,
  runOp,
  twinSkipsFailure,
  userTasks,
  type Op,
  type OpsOptions,
  type Setup,
  type World,
} from './world.ts'

/** The suites a capability manifest switches. */
export type Suite = 'protocol' | 'accounting' | 'codecs' | 'interleavings' | 'faults' | 'composition'

/** What a law's property receives: its setup and operations (and a scheduler for interleavings). */
export type LawInput = readonly [setup: Setup, ops: ReadonlyArray<Op<unknown>>, scheduler?: fc.Scheduler]

/** One law: a named property over the author's configuration. */
export interface Law {
  readonly name: string
  readonly suite: Suite
  readonly description: string
  /** Builds the property for a configuration; `maxOperations` bounds sequences. */
  readonly property: <S>(config: KitConfig<S>, maxOperations: number) => fc.IAsyncProperty<LawInput>
}

/** A violated law inside a property (the runner reports the law, seed, path and shrunk operations with it). */
export class LawViolation extends Error {
  override readonly name = 'LawViolation'
  constructor(
    message: string,
    /** How many of the generated operations had run when the law broke (later ones never ran). */
    readonly step?: number,
  ) {
    super(message)
  }
}

const versionsOf = <S>(config: KitConfig<S>): ReadonlyArray<'v1' | 'v2'> => config.capabilities?.versions ?? ['v1', 'v2']

// Every hierarchy version the author allows, with both abort orders.
const setups = <S>(config: KitConfig<S>): fc.Arbitrary<Setup> =>
  fc.record({ layout: fc.constantFrom(...versionsOf(config)), abortOrder: fc.constantFrom('reverse' as const, 'kernel' as const) })

const SPAWNS: ReadonlyArray<Op<unknown>> = [{ kind: 'spawn' }, { kind: 'spawn' }]

const prepareFaults = faultPlans.filter((plan) => plan.phase === 'prepareSleep' || plan.phase === 'prepareSpin')

const withFaults = (ops: ReadonlyArray<Op<unknown>>, plans: ReadonlyArray<FaultPlan>): ReadonlyArray<Op<unknown>> =>
  ops.map((op) => ((op.kind === 'attach' || op.kind === 'attachAll') && op.fault !== undefined && !plans.includes(op.fault) ? { ...op, fault: undefined } : op))

const property = <S>(
  config: KitConfig<S>,
  options: OpsOptions,
  body: (setup: Setup, ops: ReadonlyArray<Op<unknown>>) => Promise<void>,
): fc.IAsyncProperty<LawInput> =>
  fc.asyncProperty(
    setups(config),
    opsArbitrary(config as KitConfig<unknown>, options) as fc.Arbitrary<ReadonlyArray<Op<unknown>>>,
    (setup, ops) => body(setup, ops),
  ) as unknown as fc.IAsyncProperty<LawInput>

/**
 * Runs `ops` on a real world and a twin; after each step calls `check`.
 * The twin skips attaches and writes that failed on the real world and must
 * agree on everything else.
 */
const twinRun = async <S>(
  config: KitConfig<S>,
  setup: Setup,
  composed: boolean,
  ops: ReadonlyArray<Op<unknown>>,
  check: (real: World<S>, twin: World<S>, op: Op<unknown>, events: ReadonlyArray<TraceEvent>) => void,
): Promise<void> => {
  const real = buildWorld(config, setup, composed)
  const twin = buildWorld(config, setup, composed)
  const all = [...SPAWNS, ...ops]
  for (const [i, op] of all.entries()) {
    const step = Math.max(0, i + 1 - SPAWNS.length)
    const result = await runOp(real, op as Op<S>, true)
    if (!(twinSkipsFailure(op) && !result.ok)) {
      const mirrored = await runOp(twin, op as Op<S>, false)
      if (mirrored.ok !== result.ok)
        throw new LawViolation(`${describeOp(op)}: ${result.ok ? 'succeeded' : `failed (${result.detail})`} on the real host, ${mirrored.ok ? 'succeeded' : `failed (${mirrored.detail})`} on the twin`, step)
    }
    try {
      check(real, twin, op, result.events)
    } catch (error) {
      throw error instanceof LawViolation && error.step === undefined ? new LawViolation(error.message, step) : error
    }
  }
}

const noDifferences = <S>(config: KitConfig<S>) => (real: World<S>, twin: World<S>, op: Op<unknown>): void => {
  const found = differences(config, real, twin)
  if (found.length > 0) throw new LawViolation(`after ${describeOp(op)}, the real host and its twin differ:\n    ${found.join('\n    ')}`)
}

const noFaultsIn = (name: string, phases: ReadonlyArray<AttachPhase>) => (events: ReadonlyArray<TraceEvent>, op: Op<unknown>): void => {
  const bad = faultsOf(events, name).filter((event) => (phases as ReadonlyArray<string>).includes(event.phase))
  if (bad.length > 0) throw new LawViolation(`${describeOp(op)}: ${name} faulted in ${bad[0]!.phase}: ${bad[0]!.detail ?? ''}`)
}

const usageCheck = <S>(accounting: AccountingCapability<S>, world: World<S>, withModel: boolean, after: string): void => {
  const { subject } = world
  for (const path of PATHS) {
    if (path === '/') continue
    const css = cssAt(world, path)
    if (css === undefined) continue
    const usage = accounting.usage(css.state)
    if (usage < 0) throw new LawViolation(`after ${after}: ${path} has negative usage ${usage}`)
    let children = 0
    for (const child of css.cgroup.children.values()) {
      const at = child.ownCss[world.subjectId] as Css<S> | undefined
      if (at !== undefined) children += accounting.usage(at.state)
    }
    if (usage < children) throw new LawViolation(`after ${after}: ${path} has usage ${usage} below its children's sum ${children}`)
    if (withModel && accounting.expected !== undefined) {
      const expected = accounting.expected(css.cgroup, world.host, subject)
      if (usage !== expected) throw new LawViolation(`after ${after}: ${path} has usage ${usage}, the model says ${expected}`)
    }
  }
}

// Exits and reaps every user task: leaders last, so every thread is gone first.
const exitEverything = (host: Host): void => {
  for (const task of userTasks(host)) if (task.state === 'running' || task.state === 'exiting') host.exitSync(task.tid, { group: true })
  for (const task of userTasks(host)) if (task.state === 'zombie' && task.isLeader) host.reap(task.tid)
}

const protocolOptions = (max: number, faults: boolean): OpsOptions => ({ faults, maxOperations: max, builtinWrites: false, noops: false })

const protocolLaws: ReadonlyArray<Law> = [
  {
    name: 'failed prepare has no effect',
    suite: 'protocol',
    description: 'An attach or write the controller refuses leaves every state equivalent to a twin host that never saw it.',
    property: (config, max) => property(config, protocolOptions(max, false), (setup, ops) => twinRun(config, setup, false, ops, noDifferences(config))),
  },
  {
    name: 'abort restores an equivalent state',
    suite: 'protocol',
    description: 'When a later subsystem refuses, faults or sleeps in a prepare phase, the controller’s abort leaves state equivalent to a twin that never saw the attach.',
    property: (config, max) =>
      property(config, protocolOptions(max, true), (setup, ops) => twinRun(config, setup, false, withFaults(ops, prepareFaults), noDifferences(config))),
  },
  {
    name: 'commit cannot fail',
    suite: 'protocol',
    description: 'commit, attach and postAttach never throw, reject or sleep where they may not, whatever the other subsystems do.',
    property: (config, max) =>
      property(config, protocolOptions(max, true), (setup, ops) =>
        twinRun(config, setup, false, ops, (real, _twin, op, events) => noFaultsIn(real.subject.name, ['commit', 'attach', 'postAttach', 'abortSleep', 'abortSpin'])(events, op)),
      ),
  },
  {
    name: 'the spin phase never sleeps',
    suite: 'protocol',
    description: 'prepareSpin neither returns a promise nor takes a sleeping lock, nor throws (the core turns each into a fault).',
    property: (config, max) =>
      property(config, protocolOptions(max, true), (setup, ops) =>
        twinRun(config, setup, false, ops, (real, _twin, op, events) => noFaultsIn(real.subject.name, ['prepareSpin', 'prepareSleep'])(events, op)),
      ),
  },
  {
    name: 'no callback for a no-op move',
    suite: 'protocol',
    description: 'Moving a task to the cgroup it is in, or in a hierarchy the controller is not bound to, calls none of its callbacks.',
    property: (config, max) =>
      property(config, { faults: false, maxOperations: max, builtinWrites: false, noops: true }, (setup, ops) =>
        twinRun(config, setup, false, ops, (real, _twin, op, events) => {
          if (op.kind !== 'stay' && op.kind !== 'other') return
          const called = events.filter((event) => event.subsystem === real.subject.name)
          if (called.length > 0) throw new LawViolation(`${describeOp(op)} called ${real.subject.name}.${called[0]!.phase}`)
        }),
      ),
  },
  {
    name: 'exactly one of abort or commit',
    suite: 'protocol',
    description: 'A controller whose prepare succeeded gets exactly one of abortSleep or commit; one whose prepare failed gets neither.',
    property: (config, max) =>
      property(config, protocolOptions(max, true), (setup, ops) =>
        twinRun(config, setup, false, ops, (real, _twin, op, events) => {
          const name = real.subject.name
          const mine = events.filter((event) => event.subsystem === name)
          const count = (phase: AttachPhase) => mine.filter((event) => event.phase === phase).length
          const failedSleep = mine.some((event) => event.phase === 'prepareSleep' && event.outcome !== 'ok')
          const failedSpin = mine.some((event) => event.phase === 'prepareSpin' && event.outcome !== 'ok')
          const undo = count('abortSleep') + count('commit')
          if (failedSleep && undo + count('abortSpin') > 0) throw new LawViolation(`${describeOp(op)}: ${name} was undone or committed after its prepareSleep failed`)
          if (failedSpin && count('abortSpin') + count('commit') > 0) throw new LawViolation(`${describeOp(op)}: ${name} got abortSpin or commit after its prepareSpin failed`)
          if (undo > 1) throw new LawViolation(`${describeOp(op)}: ${name} got ${count('abortSleep')} abortSleep and ${count('commit')} commit`)
          const prepared = mine.some((event) => event.phase === 'prepareSleep' && event.outcome === 'ok') && !failedSpin
          if (prepared && real.subject.abortSleep !== undefined && real.subject.commit !== undefined && undo !== 1)
            throw new LawViolation(`${describeOp(op)}: ${name} prepared but got neither abortSleep nor commit`)
        }),
      ),
  },
]

const accountingLaws: ReadonlyArray<Law> = [
  {
    name: 'parent usage is at least the sum of its children',
    suite: 'accounting',
    description: 'After any operation, no counter is negative and each is at least the sum of its children’s.',
    property: (config, max) =>
      property(config, protocolOptions(max, true), (setup, ops) =>
        twinRun(config, setup, false, ops, (real, _twin, op) => usageCheck(config.capabilities!.accounting!, real, false, describeOp(op))),
      ),
  },
  {
    name: 'usage matches the model',
    suite: 'accounting',
    description: 'After any sequence of moves, forks, exits and actions, every counter equals what the author’s model computes from the host: nothing is lost, leaked or counted twice.',
    property: (config, max) =>
      property(config, protocolOptions(max, true), (setup, ops) =>
        twinRun(config, setup, false, ops, (real, _twin, op) => usageCheck(config.capabilities!.accounting!, real, true, describeOp(op))),
      ),
  },
  {
    name: 'everything is returned when every task is reaped',
    suite: 'accounting',
    description: 'Once every task has exited and been reaped, every non-root counter is back to zero.',
    property: (config, max) =>
      property(config, protocolOptions(max, true), async (setup, ops) => {
        const world = buildWorld(config, setup, false)
        for (const op of [...SPAWNS, ...ops]) await runOp(world, op as never, true)
        exitEverything(world.host)
        // init and kthreadd never exit: take them back to the root.
        for (const pid of [1, 2]) await world.host.attach({ mode: 'process', pid, to: { hierarchy: world.mount, path: '/' } })()
        for (const path of PATHS.slice(1)) {
          const css = cssAt(world, path)
          const usage = css === undefined ? 0 : config.capabilities!.accounting!.usage(css.state)
          if (usage !== 0) throw new LawViolation(`after every task was reaped, ${path} still has usage ${usage}`)
        }
      }),
  },
]

const codecLaws: ReadonlyArray<Law> = [
  {
    name: 'writes read back in canonical form',
    suite: 'codecs',
    description: 'A value a file accepts reads back as text that, written again, is accepted and reads back the same.',
    property: (config, max) =>
      property(config, { faults: false, maxOperations: max, builtinWrites: false, noops: false }, async (setup, ops) => {
        const world = buildWorld(config, setup, false)
        for (const op of ops) {
          if (op.kind !== 'write') continue
          const base = `/${world.mount}${PATHS[op.cgroup % PATHS.length] === '/' ? '' : PATHS[op.cgroup % PATHS.length]}/${op.write.file}`
          const written = world.fs.writeSync(base, op.write.value)
          if (E.isLeft(written)) continue
          const first = world.fs.readSync(base)
          if (E.isLeft(first)) continue
          const again = world.fs.writeSync(base, first.right)
          if (E.isLeft(again)) throw new LawViolation(`${base}: ${JSON.stringify(op.write.value)} read back as ${JSON.stringify(first.right)}, which is refused: ${again.left.message}`)
          const second = world.fs.readSync(base)
          if (E.isLeft(second) || second.right !== first.right)
            throw new LawViolation(`${base}: ${JSON.stringify(first.right)} written back reads ${E.isLeft(second) ? second.left.message : JSON.stringify(second.right)}`)
        }
      }),
  },
  {
    name: 'codecs round-trip',
    suite: 'codecs',
    description: 'For every value a file’s codec decodes, decoding its encoding gives the same value.',
    property: (config, max) => codecRoundTrip(config, max),
  },
  {
    name: 'rejected write keeps the old value',
    suite: 'codecs',
    description: 'A write refused with an errno leaves the state equivalent to a twin that never saw it.',
    property: (config, max) =>
      property(config, protocolOptions(max, false), (setup, ops) =>
        twinRun(config, setup, false, ops.filter((op) => op.kind === 'write' || op.kind === 'spawn'), noDifferences(config)),
      ),
  },
]

function codecRoundTrip<S>(config: KitConfig<S>, max: number): fc.IAsyncProperty<LawInput> {
  const writes = config.arbitraries.writes ?? fc.constant({ file: '', value: '' })
  return fc.asyncProperty(setups(config), fc.array(writes, { maxLength: max }), async (_setup, list) => {
    const specs = (config.factory() as Partial<DefinedSubsystem<S>>).definition?.files ?? []
    for (const { file, value } of list) {
      const codec = specs.find((spec) => spec.name === file)?.write?.codec
      if (codec === undefined || !('encode' in codec)) continue
      const decoded = codec.decode(value)
      if (E.isLeft(decoded)) continue
      const text = (codec as unknown as { encode: (a: unknown) => string }).encode(decoded.right)
      const again = codec.decode(text)
      if (E.isLeft(again) || JSON.stringify(again.right) !== JSON.stringify(decoded.right))
        throw new LawViolation(`${file}: ${JSON.stringify(value)} decodes to ${JSON.stringify(decoded.right)}, encodes to ${JSON.stringify(text)}, which decodes to ${E.isLeft(again) ? 'an error' : JSON.stringify(again.right)}`)
    }
  }) as unknown as fc.IAsyncProperty<LawInput>
}

const interleavingLaws: ReadonlyArray<Law> = [
  {
    name: 'interleaved operations keep the invariants',
    suite: 'interleavings',
    description:
      'Attaches that wait in prepareSleep (at points fc.scheduler picks) run concurrently with forks, exits, writes and actions: the controller never faults, every operation settles, the group mutex is free afterwards, and the accounting invariants and the author’s model hold.',
    property: (config, max) =>
      fc.asyncProperty(
        setups(config),
        opsArbitrary(config as KitConfig<unknown>, { faults: true, maxOperations: Math.min(max, 12), builtinWrites: false, noops: false }),
        fc.scheduler(),
        async (setup, ops, scheduler) => {
          const world = buildWorld(config, setup, false)
          for (const op of SPAWNS) await runOp(world, op as never, false)
          world.companion.gate = () => scheduler.schedule(Promise.resolve('companion prepareSleep'), 'prepareSleep wait')
          const running = ops.map((op) => scheduler.schedule(Promise.resolve(describeOp(op)), 'start').then(() => runOp(world, op as never, true)))
          const all = Promise.all(running)
          await scheduler.waitFor(all)
          const results = await all
          world.companion.gate = undefined
          if (world.host.mutex.owner !== undefined) throw new LawViolation('the group mutex is still held after every operation settled')
          const faults = results.flatMap((result) => faultsOf(result.events, world.subject.name))
          if (faults.length > 0) throw new LawViolation(`${world.subject.name} faulted in ${faults[0]!.phase}: ${faults[0]!.detail ?? ''}`)
          const accounting = config.capabilities?.accounting
          if (accounting !== undefined) usageCheck(accounting, world, true, 'the interleaving')
        },
      ) as unknown as fc.IAsyncProperty<LawInput>,
  },
]

const faultLaws: ReadonlyArray<Law> = [
  {
    name: 'fault injection at every callback',
    suite: 'faults',
    description: 'With the companion refusing, throwing, rejecting or sleeping in each phase in turn, the controller ends equivalent to a twin that saw only the attaches that committed, and never faults itself.',
    property: (config, max) =>
      fc.asyncProperty(
        setups(config),
        opsArbitrary(config as KitConfig<unknown>, protocolOptions(max, false)),
        fc.constantFrom(...faultPlans),
        async (setup, ops, plan) => {
          const armed = ops.map((op) => (op.kind === 'attach' || op.kind === 'attachAll' ? { ...op, fault: plan } : op))
          await twinRun(config, setup, false, armed, (real, twin, op, events) => {
            noDifferences(config)(real, twin, op)
            const mine = faultsOf(events, real.subject.name)
            if (mine.length > 0) throw new LawViolation(`${describeOp(op)}: ${real.subject.name} faulted in ${mine[0]!.phase}: ${mine[0]!.detail ?? ''}`)
          })
        },
      ) as unknown as fc.IAsyncProperty<LawInput>,
  },
]

const compositionLaws: ReadonlyArray<Law> = [
  {
    name: 'composes with the built-in controllers',
    suite: 'composition',
    description: 'Mounted with cpuset and pids (whose refusals abort it) and next to cpu, memory and freezer, the controller keeps every protocol and accounting law.',
    property: (config, max) =>
      property(config, { faults: true, maxOperations: max, builtinWrites: true, noops: true }, (setup, ops) =>
        twinRun(config, setup, true, ops, (real, twin, op, events) => {
          noDifferences(config)(real, twin, op)
          noFaultsIn(real.subject.name, ['prepareSleep', 'prepareSpin', 'abortSpin', 'abortSleep', 'commit', 'attach', 'postAttach'])(events, op)
          const accounting = config.capabilities?.accounting
          if (accounting !== undefined) usageCheck(accounting, real, true, describeOp(op))
        }),
      ),
  },
]

/** Every law, in catalog order. */
export const allLaws: ReadonlyArray<Law> = [...protocolLaws, ...accountingLaws, ...codecLaws, ...interleavingLaws, ...faultLaws, ...compositionLaws]

/** The laws a configuration's capability manifest selects. */
export const lawsFor = <S>(config: KitConfig<S>): ReadonlyArray<Law> => {
  const caps = config.capabilities ?? {}
  const hasWrites = config.arbitraries.writes !== undefined
  return allLaws.filter((law) => {
    switch (law.suite) {
      case 'protocol':
        return caps.protocol !== false
      case 'accounting':
        if (caps.accounting === undefined) return false
        if (law.name === 'usage matches the model') return caps.accounting.expected !== undefined
        if (law.name === 'everything is returned when every task is reaped') return caps.accounting.releasedOnReap === true
        return true
      case 'codecs':
        return caps.codecs !== false && hasWrites
      case 'interleavings':
        return caps.interleavings !== false
      case 'faults':
        return caps.faults !== false
      case 'composition':
        return caps.composition !== false && !['cpuset', 'cpu', 'memory', 'freezer', 'pids', COMPANION].includes(config.factory().name)
    }
  })
}
