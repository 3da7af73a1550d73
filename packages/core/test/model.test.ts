/**
 * Model-based property test of the synchronous API: random sequences of
 * mkdir, rmdir, fork (process and thread), beginExit, exit, reap and attach
 * (thread / process / all, one or both hierarchies at once) with test
 * subsystems that fail in a random phase, run against a small plain-object
 * model. After every command the host must agree with the model, and every
 * transaction must have kept the protocol's promises.
 */
import * as E from 'fp-ts/lib/Either.js'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { Host, VirtualCgroupFs, type AbortOrder, type CgtxError, type Css } from '@cgtx/core'
import { expectProtocol, recorder, right, type CallRecord, type Counter, type FailureKind, type Plan } from './fixtures.ts'

type Hier = 'h' | 'g'
const HIERS: ReadonlyArray<Hier> = ['h', 'g']
const NAMES = ['a', 'b', 'c', 'd'] as const
// a, b, c are bound to the v1 hierarchy h; d to the v2 hierarchy g, enabled
// in g's root so only depth-1 cgroups of g own a d css.
const HIER_OF: Record<(typeof NAMES)[number], Hier> = { a: 'h', b: 'h', c: 'h', d: 'g' }

interface MTask {
  readonly tid: number
  readonly tgid: number
  state: 'running' | 'exiting' | 'zombie'
  /** Kernel threads (kthreadd and what it forks) cannot exec. */
  readonly kthread: boolean
  readonly cg: Record<Hier, string>
  /** Zombies whose cgroup was removed (the path may have been recreated since). */
  readonly detached: Record<Hier, boolean>
}

interface Model {
  readonly tasks: Map<number, MTask>
  readonly cgroups: Record<Hier, Set<string>>
  /** d is enabled in g's root `cgroup.subtree_control`. */
  dEnabled: boolean
}

interface Real {
  readonly host: Host
  readonly fs: VirtualCgroupFs
  readonly calls: Array<CallRecord>
  readonly subsystems: ReadonlyArray<ReturnType<typeof recorder>>
}

const live = (task: MTask): boolean => task.state !== 'zombie'
const parentOf = (path: string): string => (path.lastIndexOf('/') === 0 ? '/' : path.slice(0, path.lastIndexOf('/')))
const under = (path: string, root: string): boolean => root === '/' || path === root || path.startsWith(`${root}/`)
const fsPath = (hier: Hier, path: string, file: string): string => `/${hier}${path === '/' ? '' : path}/${file}`
// The cgroup whose css a running task in `path` uses for the subsystem(s) of
// `hier`: its own in h; in g the depth-1 ancestor's while d is enabled in the
// root, else the root's.
const cssKey = (model: Model, hier: Hier, path: string): string =>
  hier === 'h' ? path : path === '/' || !model.dEnabled ? '/' : `/${path.split('/')[1]!}`
const threadsOf = (model: Model, tgid: number): Array<MTask> => [...model.tasks.values()].filter((task) => task.tgid === tgid)

// ---------------------------------------------------------------- setup

const setup = (abortOrder: AbortOrder): { model: Model; real: Real } => {
  const calls: Array<CallRecord> = []
  const subsystems = NAMES.map((name) => recorder(name, calls))
  const host = right(
    Host.create({
      subsystems,
      hierarchies: [
        { name: 'h', version: 'v1', subsystems: ['a', 'b', 'c'] },
        { name: 'g', version: 'v2', subsystems: ['d'] },
      ],
      abortOrder,
    }),
  )
  const fs = new VirtualCgroupFs(host)
  right(fs.writeSync('/g/cgroup.subtree_control', '+d'))
  // init and kthreadd were never forked: charge them to the roots by hand.
  for (const hier of HIERS) for (const css of host.hierarchy(hier)!.root.ownCss) if (css !== undefined) (css.state as Counter).tasks = 2
  const tasks = new Map<number, MTask>()
  for (const tid of [1, 2]) tasks.set(tid, { tid, tgid: tid, state: 'running', kthread: tid === 2, cg: { h: '/', g: '/' }, detached: { h: false, g: false } })
  return { model: { tasks, cgroups: { h: new Set(['/']), g: new Set(['/']) }, dEnabled: true }, real: { host, fs, calls, subsystems } }
}

// ------------------------------------------------------------ snapshots

// Everything a failed operation must leave as it was.
const snapshot = (real: Real): unknown => {
  const { host, fs } = real
  const cgroups = HIERS.flatMap((hier) =>
    [...host.hierarchy(hier)!.root.subtree()].map((cgroup) => ({
      hier,
      id: cgroup.id,
      path: cgroup.path,
      populated: cgroup.populated,
      counters: cgroup.hierarchy.subsystems.map(({ id }) => {
        const css = cgroup.ownCss[id]
        return css === undefined ? null : (css.state as Counter).tasks
      }),
      events: hier === 'g' && !cgroup.isRoot ? fs.readSync(fsPath(hier, cgroup.path, 'cgroup.events')) : null,
      subtreeControl: [...cgroup.subtreeControl],
    })),
  )
  const tasks = [...host.tasks()].map((task) => ({
    tid: task.tid,
    state: task.state,
    cgroups: task.cssSet.cgroups.map((cgroup) => cgroup.id),
    css: task.cssSet.css.map((css) => css?.id),
  }))
  return { cgroups, tasks }
}

// Waits for strays (a promise returned into a synchronous attach) to settle
// and the transaction holding the group mutex to finish.
const settle = async (host: Host): Promise<void> => {
  for (let i = 0; i < 50 && host.mutex.owner !== undefined; i++) await new Promise((resolve) => setTimeout(resolve, 0))
  expect(host.mutex.owner, 'the group mutex is released once strays settle').toBeUndefined()
}

// ------------------------------------------------------------ invariants

const expectCounters = (model: Model, real: Real): void => {
  const { host } = real
  for (const hier of HIERS) {
    for (const cgroup of host.hierarchy(hier)!.root.subtree()) {
      for (const { id } of cgroup.hierarchy.subsystems) {
        const css = cgroup.ownCss[id] as Css<Counter> | undefined
        const ownsCss = hier === 'h' || cgroup.level === 0 || (cgroup.level === 1 && model.dEnabled)
        expect(css !== undefined, `${hier}:${cgroup.path} owns a css for ${id}`).toBe(ownsCss)
        if (css === undefined) continue
        // Running tasks use the css the model says; exiting ones keep the
        // css they had when a subtree_control change skipped them.
        const users = [...model.tasks.values()].filter((task) =>
          task.state === 'running'
            ? cssKey(model, hier, task.cg[hier]) === cgroup.path
            : task.state === 'exiting' && host.task(task.tid)!.cssSet.css[id] === css,
        )
        expect(css.state.tasks, `counter of ${css.subsystem.name} in ${hier}:${cgroup.path}`).toBe(users.length)
        for (const task of users) expect(host.task(task.tid)!.cssSet.css[id], `css of ${task.tid}`).toBe(css)
      }
    }
  }
}

const expectAgrees = (model: Model, real: Real): void => {
  const { host, fs } = real
  expect(host.mutex.owner).toBeUndefined()
  // The same tasks, in the same states.
  expect([...host.tasks()].map((task) => task.tid).sort((a, b) => a - b)).toEqual([...model.tasks.keys()].sort((a, b) => a - b))
  for (const mtask of model.tasks.values()) {
    const task = host.task(mtask.tid)!
    expect(task.state, `state of ${mtask.tid}`).toBe(mtask.state)
    expect(task.tgid).toBe(mtask.tgid)
    if (!live(mtask)) continue
    for (const hier of HIERS) {
      const cgroup = host.cgroupOf(task, host.hierarchy(hier)!)
      expect(cgroup.path, `${mtask.tid} in ${hier}`).toBe(mtask.cg[hier])
      expect(cgroup.dead).toBe(false)
    }
  }
  for (const hier of HIERS) {
    const cgroups = [...host.hierarchy(hier)!.root.subtree()]
    expect(cgroups.map((cgroup) => cgroup.path).sort()).toEqual([...model.cgroups[hier]].sort())
    // Every live task in exactly one cgroup of this hierarchy.
    const seen = new Map<number, number>()
    for (const cgroup of cgroups) for (const task of cgroup.tasks()) seen.set(task.tid, (seen.get(task.tid) ?? 0) + 1)
    const liveTids = [...model.tasks.values()].filter(live).map((task) => task.tid)
    expect([...seen.keys()].sort((a, b) => a - b)).toEqual(liveTids.sort((a, b) => a - b))
    expect([...seen.values()].every((count) => count === 1)).toBe(true)
    for (const cgroup of cgroups) {
      const here = [...model.tasks.values()].filter((task) => live(task) && task.cg[hier] === cgroup.path)
      const tids = here.map((task) => task.tid).sort((a, b) => a - b)
      // v1 lists a process wherever it has a live thread; v2 where its leader
      // is (a zombie leader too, while its threads live).
      const tgids =
        hier === 'h'
          ? [...new Set(here.map((task) => task.tgid))]
          : [...model.tasks.values()]
              .filter((task) => task.tid === task.tgid && !task.detached.g && task.cg.g === cgroup.path && threadsOf(model, task.tgid).some(live))
              .map((task) => task.tgid)
      tgids.sort((a, b) => a - b)
      const listed = (file: string): Array<number> => {
        const values = right(fs.readSync(fsPath(hier, cgroup.path, file))).split('\n').filter((line) => line !== '').map(Number)
        // v1 listings are sorted; v2 ones come in iteration order.
        if (hier === 'h') expect(values).toEqual([...values].sort((a, b) => a - b))
        return values.sort((a, b) => a - b)
      }
      expect(listed(hier === 'h' ? 'tasks' : 'cgroup.threads'), `threads of ${hier}:${cgroup.path}`).toEqual(tids)
      expect(listed('cgroup.procs'), `procs of ${hier}:${cgroup.path}`).toEqual(tgids)
      const populated = [...model.tasks.values()].some((task) => live(task) && under(task.cg[hier], cgroup.path))
      expect(cgroup.populated, `populated ${hier}:${cgroup.path}`).toBe(populated)
      if (hier === 'g' && !cgroup.isRoot)
        expect(right(fs.readSync(fsPath(hier, cgroup.path, 'cgroup.events')))).toBe(`populated ${populated ? 1 : 0}\nfrozen 0\n`)
    }
  }
  expectCounters(model, real)
}

// ------------------------------------------------------------- commands

type Cmd = fc.AsyncCommand<Model, Real>
type Outcome = { readonly ok: true } | { readonly ok: false; readonly check: (error: CgtxError) => void }
const ok: Outcome = { ok: true }
const errno = (name: string): Outcome => ({ ok: false, check: (error) => expect(error).toMatchObject({ _tag: 'SystemError', errno: name }) })

// Runs one operation: predicted failures must change nothing; the protocol
// must hold for the transactions it ran; the host must agree with the model.
const step = async <A>(
  model: Model,
  real: Real,
  predicted: Outcome,
  op: () => E.Either<CgtxError, A> | Promise<E.Either<CgtxError, A>>,
  apply: (result: A) => void,
  committed?: (result: A | undefined) => boolean | undefined,
): Promise<void> => {
  const before = snapshot(real)
  const from = real.calls.length
  const result = await op()
  await settle(real.host)
  if (predicted.ok) {
    if (E.isLeft(result)) expect.fail(`expected success, got ${result.left.message}`)
    apply(result.right)
  } else {
    if (E.isRight(result)) expect.fail(`expected failure, got ${JSON.stringify(result.right, (_k, v) => (typeof v === 'object' && v?.constructor?.name === 'Task' ? v.tid : v))}`)
    predicted.check(result.left)
    expect(snapshot(real), 'a failed operation changes nothing').toEqual(before)
  }
  const expected = committed?.(E.isRight(result) ? result.right : undefined)
  expectProtocol(real.calls.slice(from), { ...(expected === undefined ? {} : { committed: expected }), ids: NAMES, abortOrder: real.host.abortOrder })
  expectAgrees(model, real)
}

const pickTid = (model: Model, pick: number): number => {
  const tids = [...model.tasks.keys()].sort((a, b) => a - b)
  return pick % 11 === 10 ? 99_999 : tids[pick % tids.length]!
}

// Existing cgroups are named by index (so most commands hit one); index 10
// of every 11 names a cgroup that does not exist.
const pickPath = (model: Model, hier: Hier, pick: number): string => {
  const paths = [...model.cgroups[hier]].sort()
  return pick % 11 === 10 ? `${paths[pick % paths.length] === '/' ? '' : paths[pick % paths.length]}/missing` : paths[pick % paths.length]!
}

class Mkdir implements Cmd {
  constructor(readonly hier: Hier, readonly pick: number, readonly name: string) {}
  check = (): boolean => true
  async run(model: Model, real: Real): Promise<void> {
    const set = model.cgroups[this.hier]
    const parent = pickPath(model, this.hier, this.pick)
    const path = `${parent === '/' ? '' : parent}/${this.name}`
    const predicted = !set.has(parent) ? errno('ENOENT') : set.has(path) ? errno('EEXIST') : ok
    await step(model, real, predicted, () => real.host.mkdirSync({ hierarchy: this.hier, path }), () => void set.add(path))
  }
  toString = (): string => `mkdir ${this.hier}:#${this.pick}/${this.name}`
}

class Rmdir implements Cmd {
  constructor(readonly hier: Hier, readonly pick: number) {}
  check = (): boolean => true
  async run(model: Model, real: Real): Promise<void> {
    const set = model.cgroups[this.hier]
    const path = pickPath(model, this.hier, this.pick)
    const populated = [...model.tasks.values()].some((task) => live(task) && under(task.cg[this.hier], path))
    const children = [...set].some((other) => other !== path && parentOf(other) === path)
    const predicted = path === '/' || (set.has(path) && (populated || children)) ? errno('EBUSY') : !set.has(path) ? errno('ENOENT') : ok
    await step(model, real, predicted, () => real.host.rmdirSync({ hierarchy: this.hier, path }), () => {
      set.delete(path)
      for (const task of model.tasks.values()) if (task.cg[this.hier] === path) task.detached[this.hier] = true
    })
  }
  toString = (): string => `rmdir ${this.hier}:#${this.pick}`
}

class Fork implements Cmd {
  constructor(readonly pick: number, readonly thread: boolean) {}
  check = (): boolean => true
  async run(model: Model, real: Real): Promise<void> {
    const pid = pickTid(model, this.pick)
    const parent = model.tasks.get(pid)
    const predicted = parent === undefined || parent.state !== 'running' ? errno('ESRCH') : ok
    await step(model, real, predicted, () => real.host.forkSync(pid, { thread: this.thread }), (child) => {
      expect(model.tasks.has(child.tid)).toBe(false)
      model.tasks.set(child.tid, {
        tid: child.tid,
        tgid: this.thread ? parent!.tgid : child.tid,
        state: 'running',
        kthread: parent!.kthread,
        cg: { ...parent!.cg },
        detached: { h: false, g: false },
      })
    })
  }
  toString = (): string => `fork #${this.pick}${this.thread ? ' thread' : ''}`
}

class Exit implements Cmd {
  constructor(readonly pick: number, readonly group: boolean, readonly finish: boolean) {}
  check = (): boolean => true
  async run(model: Model, real: Real): Promise<void> {
    const pid = pickTid(model, this.pick)
    const task = model.tasks.get(pid)
    const predicted = task === undefined || task.state === 'zombie' || pid <= 2 || (this.group && task.tgid <= 2) ? errno('ESRCH') : ok
    const op = () => (this.finish ? real.host.exitSync(pid, { group: this.group }) : real.host.beginExitSync(pid, { group: this.group }))
    await step(model, real, predicted, op, () => {
      const targets = this.group ? threadsOf(model, task!.tgid) : [task!]
      for (const target of targets) {
        if (target.state === 'running') target.state = 'exiting'
        if (this.finish && target.state === 'exiting') {
          target.state = 'zombie'
          if (target.tid !== target.tgid) model.tasks.delete(target.tid)
        }
      }
    })
  }
  toString = (): string => `${this.finish ? 'exit' : 'beginExit'} #${this.pick}${this.group ? ' group' : ''}`
}

class SubtreeControl implements Cmd {
  constructor(
    readonly enable: boolean,
    readonly plan: { failIn: 'prepareSleep' | 'prepareSpin'; how: FailureKind } | undefined,
  ) {}
  check = (): boolean => true
  async run(model: Model, real: Real): Promise<void> {
    const d = real.subsystems[3]!
    d.plan = this.plan ?? {}
    // Tasks whose d css changes: running ones below the root (exiting ones are skipped).
    const moved = [...model.tasks.values()].filter((task) => task.state === 'running' && task.cg.g !== '/')
    const changes = this.enable !== model.dEnabled && moved.length > 0
    const how = this.plan?.how
    const predicted: Outcome =
      !changes || this.plan === undefined
        ? ok
        : {
            ok: false,
            check: (error) => {
              // A sleep in a synchronous write is refused as a write that would sleep.
              if (how === 'refuse' || how === 'throw') expect(error).toMatchObject({ subsystem: 'd' })
              else expect(error).toMatchObject({ _tag: 'SystemError' })
            },
          }
    await step(model, real, predicted, () => real.fs.writeSync('/g/cgroup.subtree_control', this.enable ? '+d' : '-d'), () => void (model.dEnabled = this.enable), () => predicted.ok)
    d.plan = {}
  }
  toString = (): string => `subtree_control ${this.enable ? '+d' : '-d'} ${JSON.stringify(this.plan ?? {})}`
}

class Exec implements Cmd {
  constructor(readonly pick: number) {}
  check = (): boolean => true
  async run(model: Model, real: Real): Promise<void> {
    const pid = pickTid(model, this.pick)
    const task = model.tasks.get(pid)
    const predicted = task === undefined || task.state !== 'running' || task.kthread ? errno('ESRCH') : ok
    await step(model, real, predicted, () => real.host.execSync(pid), (result) => {
      const group = threadsOf(model, task!.tgid)
      // Every other thread ends; the exec'ing thread becomes the leader and takes the process id.
      for (const other of group) if (other !== task && other.tid !== other.tgid) model.tasks.delete(other.tid)
      if (task!.tid !== task!.tgid) {
        model.tasks.delete(task!.tgid)
        model.tasks.delete(task!.tid)
        model.tasks.set(task!.tgid, { ...task!, tid: task!.tgid })
      }
      expect(result.tid).toBe(task!.tgid)
    })
  }
  toString = (): string => `exec #${this.pick}`
}

class Reap implements Cmd {
  constructor(readonly pick: number) {}
  check = (): boolean => true
  async run(model: Model, real: Real): Promise<void> {
    const pid = pickTid(model, this.pick)
    const task = model.tasks.get(pid)
    const predicted =
      task === undefined || task.state !== 'zombie' || task.tid !== task.tgid ? errno('ESRCH') : threadsOf(model, pid).length > 1 ? errno('EBUSY') : ok
    await step(model, real, predicted, () => real.host.reap(pid), () => void model.tasks.delete(pid))
  }
  toString = (): string => `reap #${this.pick}`
}

interface Dest {
  readonly hier: Hier
  readonly pick: number
}
type Plans = Partial<Record<(typeof NAMES)[number], { failIn: 'prepareSleep' | 'prepareSpin'; how: FailureKind }>>

class Attach implements Cmd {
  constructor(
    readonly mode: 'thread' | 'process' | 'all',
    readonly pick: number,
    readonly fromPick: number,
    readonly dests: ReadonlyArray<Dest>,
    readonly plans: Plans,
    /** attachSync, or the waiting attach (where prepareSleep may sleep). */
    readonly sync: boolean,
  ) {}
  // Resolved when run (names depend on the model's state then).
  private to: ReadonlyArray<{ readonly hier: Hier; readonly path: string }> = []
  private from = '/'
  check = (): boolean => true

  async run(model: Model, real: Real): Promise<void> {
    for (const subsystem of real.subsystems) {
      const plan: Plan = this.plans[subsystem.name as (typeof NAMES)[number]] ?? {}
      subsystem.plan = plan
    }
    const pid = pickTid(model, this.pick)
    this.to = this.dests.map((dest) => ({ hier: dest.hier, path: pickPath(model, dest.hier, dest.pick) }))
    this.from = pickPath(model, this.dests[0]!.hier, this.fromPick)
    const refs = this.to.map((dest) => ({ hierarchy: dest.hier, path: dest.path }))
    const request =
      this.mode === 'all'
        ? { mode: 'all' as const, from: this.from, to: refs.length === 1 ? refs[0]! : refs }
        : { mode: this.mode, pid, to: refs.length === 1 ? refs[0]! : refs }
    const { predicted, entries, called } = this.predict(model, pid)
    await step(
      model,
      real,
      predicted,
      () => (this.sync ? real.host.attachSync(request) : real.host.attach(request)()),
      (report) => {
        expect([...report.moved].sort((a, b) => a - b)).toEqual(entries.map((task) => task.tid).sort((a, b) => a - b))
        expect(report.subsystems).toEqual(called)
        for (const task of entries) for (const dest of this.to) task.cg[dest.hier] = dest.path
      },
      () => predicted.ok,
    )
    for (const subsystem of real.subsystems) subsystem.plan = {}
  }

  private predict(model: Model, pid: number): { predicted: Outcome; entries: Array<MTask>; called: Array<string> } {
    const none = { entries: [], called: [] }
    if (this.to.some((dest) => !model.cgroups[dest.hier].has(dest.path))) return { predicted: errno('ENOENT'), ...none }
    const first = this.to[0]!
    const task = model.tasks.get(pid)
    if (this.mode === 'all' && !model.cgroups[first.hier].has(this.from)) return { predicted: errno('ENOENT'), ...none }
    if (this.mode !== 'all' && task === undefined) return { predicted: errno('ESRCH'), ...none }
    // v2: a thread may only move within its thread domain (here: its cgroup).
    const g = this.to.find((dest) => dest.hier === 'g')
    if (this.mode === 'thread' && g !== undefined && (task!.detached.g || task!.cg.g !== g.path))
      return { predicted: errno('EOPNOTSUPP'), ...none }
    const candidates =
      this.mode === 'all'
        ? [...model.tasks.values()].filter((t) => live(t) && t.cg[first.hier] === this.from)
        : this.mode === 'process'
          ? threadsOf(model, task!.tgid)
          : [task!]
    const entries = candidates.filter((t) => t.state === 'running' && this.to.some((dest) => t.cg[dest.hier] !== dest.path))
    const called = NAMES.filter((name) => {
      const hier = HIER_OF[name]
      const dest = this.to.find((d) => d.hier === hier)
      return dest !== undefined && entries.some((t) => cssKey(model, hier, t.cg[hier]) !== cssKey(model, hier, dest.path))
    })
    // Sleeping in prepareSleep is a fault only where nothing may wait.
    const failsInSleep = (name: (typeof NAMES)[number]): boolean =>
      this.plans[name]?.failIn === 'prepareSleep' && (this.sync || this.plans[name]!.how !== 'sleep')
    const failing = called.find(failsInSleep) ?? called.find((name) => this.plans[name]?.failIn === 'prepareSpin')
    if (failing === undefined) return { predicted: ok, entries, called }
    const how = this.plans[failing]!.how
    return {
      predicted: {
        ok: false,
        check: (error) => {
          expect(error).toMatchObject({ _tag: 'SystemError', subsystem: failing })
          if (how === 'refuse') expect(error).toMatchObject({ errno: 'ENOSPC' })
          else expect(error).toMatchObject({ fault: { subsystem: failing, phase: this.plans[failing]!.failIn } })
        },
      },
      entries,
      called,
    }
  }

  toString = (): string =>
    `${this.sync ? 'attachSync' : 'attach'} ${this.mode} ${this.mode === 'all' ? `all of #${this.fromPick}` : `#${this.pick}`} → ${this.dests.map((d) => `${d.hier}:#${d.pick}`).join(' + ')} ${JSON.stringify(this.plans)}`
}

// ----------------------------------------------------------- arbitraries

const hierArb = fc.constantFrom<Hier>('h', 'g')
const planArb: fc.Arbitrary<Plans> = fc.oneof(
  { weight: 2, arbitrary: fc.constant({}) },
  {
    weight: 2,
    arbitrary: fc.dictionary(
      fc.constantFrom(...NAMES),
      fc.record({
        failIn: fc.constantFrom<'prepareSleep' | 'prepareSpin'>('prepareSleep', 'prepareSpin'),
        how: fc.constantFrom<FailureKind>('refuse', 'throw', 'sleep', 'reject'),
      }),
      { maxKeys: 2 },
    ) as fc.Arbitrary<Plans>,
  },
)
const destsArb: fc.Arbitrary<ReadonlyArray<Dest>> = fc.oneof(
  fc.tuple(hierArb, fc.nat()).map(([hier, pick]) => [{ hier, pick }]),
  fc.tuple(fc.nat(), fc.nat(), fc.boolean()).map(([hPick, gPick, hFirst]) => {
    const h = { hier: 'h' as const, pick: hPick }
    const g = { hier: 'g' as const, pick: gPick }
    return hFirst ? [h, g] : [g, h]
  }),
)
const nameArb = fc.constantFrom('x', 'y', 'z')

// subtree_control ±d, sometimes with d failing in a prepare phase.
const subtreeControlArb = fc
  .tuple(
    fc.boolean(),
    fc.oneof(
      { weight: 3, arbitrary: fc.constant(undefined) },
      {
        weight: 1,
        arbitrary: fc.record({
          failIn: fc.constantFrom<'prepareSleep' | 'prepareSpin'>('prepareSleep', 'prepareSpin'),
          how: fc.constantFrom<FailureKind>('refuse', 'throw', 'sleep', 'reject'),
        }),
      },
    ),
  )
  .map(([enable, plan]) => new SubtreeControl(enable, plan))

const commandArbs = [
  fc.tuple(hierArb, fc.nat(), nameArb).map(([hier, pick, name]) => new Mkdir(hier, pick, name)),
  fc.tuple(hierArb, fc.nat(), nameArb).map(([hier, pick, name]) => new Mkdir(hier, pick, name)),
  fc.tuple(hierArb, fc.nat()).map(([hier, pick]) => new Rmdir(hier, pick)),
  fc.tuple(fc.nat(), fc.boolean()).map(([pick, thread]) => new Fork(pick, thread)),
  fc.tuple(fc.nat(), fc.boolean()).map(([pick, thread]) => new Fork(pick, thread)),
  fc.tuple(fc.nat(), fc.boolean(), fc.boolean()).map(([pick, group, finish]) => new Exit(pick, group, finish)),
  fc.nat().map((pick) => new Reap(pick)),
  fc.nat().map((pick) => new Exec(pick)),
  // Listed twice: subtree_control toggles with a failing d are rare otherwise.
  subtreeControlArb,
  subtreeControlArb,
  fc
    .tuple(fc.constantFrom<'thread' | 'process' | 'all'>('thread', 'process', 'all'), fc.nat(), fc.nat(), destsArb, planArb, fc.boolean())
    .map(([mode, pick, from, dests, plans, sync]) => new Attach(mode, pick, from, dests, plans, sync)),
  fc
    .tuple(fc.constantFrom<'thread' | 'process' | 'all'>('thread', 'process', 'all'), fc.nat(), fc.nat(), destsArb, planArb, fc.boolean())
    .map(([mode, pick, from, dests, plans, sync]) => new Attach(mode, pick, from, dests, plans, sync)),
  fc
    .tuple(fc.constantFrom<'thread' | 'process' | 'all'>('thread', 'process', 'all'), fc.nat(), fc.nat(), destsArb, planArb, fc.boolean())
    .map(([mode, pick, from, dests, plans, sync]) => new Attach(mode, pick, from, dests, plans, sync)),
]

describe('host against the reference model', () => {
  it('keeps every live task in exactly one cgroup per hierarchy, all or nothing, one abort or commit per prepared subsystem', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom<AbortOrder>('reverse', 'kernel'), fc.commands(commandArbs, { maxCommands: 40, size: 'max' }), async (abortOrder, commands) => {
        await fc.asyncModelRun(() => setup(abortOrder), commands)
      }),
      { numRuns: 100 },
    )
  })
})
