/**
 * Interleavings: concurrent asynchronous transactions whose callbacks sleep
 * (on promises fast-check's scheduler resolves in random order), racing with
 * forks and exits of the processes being moved and with mkdir / rmdir. After
 * everything settles: nothing lost, nothing in two places, every operation
 * finished (no deadlock), counters consistent, and no fork ever ran inside a
 * process while it was being moved.
 */
import * as E from 'fp-ts/lib/Either.js'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { Host, VirtualCgroupFs, type AttachContext, type Css, type Subsystem, type Task, type ThreadGroup } from '@cgtx/core'
import { expectProtocol, left, recorder, right, type CallRecord, type Counter } from './fixtures.ts'

interface World {
  readonly host: Host
  readonly calls: Array<CallRecord>
  /** Broken promises noticed inside hooks. */
  readonly problems: Array<string>
  readonly pids: { readonly p1: number; readonly t1: number; readonly t2: number; readonly p2: number }
  /** Every task that existed when the operations started. */
  readonly initial: ReadonlyArray<Task>
  /** The process each exit / exec operation ends tasks of. */
  readonly groups: ReadonlyMap<string, ThreadGroup>
}

// A recorder whose prepareSleep and attach first sleep on a promise the
// scheduler resolves, which watches the thread-group lock from its fork hook.
const sleepy = (
  base: Subsystem<Counter>,
  schedule: (label: string) => Promise<void> | undefined,
  moving: Set<ThreadGroup>,
  problems: Array<string>,
): Subsystem<Counter> => ({
  ...base,
  prepareSleep: (ctx) => {
    for (const entry of ctx.tasks) moving.add(entry.task.group)
    const wait = schedule(`${base.name}.prepareSleep tx${ctx.transaction}`)
    return wait === undefined ? base.prepareSleep!(ctx) : wait.then(() => base.prepareSleep!(ctx))
  },
  attach: (ctx) => {
    const wait = schedule(`${base.name}.attach tx${ctx.transaction}`)
    return wait === undefined ? base.attach!(ctx) : wait.then(() => base.attach!(ctx))
  },
  // The thread-group locks drop just before postAttach.
  postAttach: (ctx) => {
    for (const entry of ctx.tasks) moving.delete(entry.task.group)
    return base.postAttach!(ctx)
  },
  fork: (ctx) => {
    if (moving.has(ctx.parent.group)) problems.push(`fork of ${ctx.parent.tid} ran while its process was being moved`)
    if (ctx.child.cssSet !== ctx.parent.cssSet) problems.push(`child of ${ctx.parent.tid} not in its parent's cgroups`)
    base.fork!(ctx)
  },
})

// c refuses in prepareSpin any move into h:/other.
const picky = (base: Subsystem<Counter>, calls: Array<CallRecord>): Subsystem<Counter> => ({
  ...base,
  prepareSpin: (ctx: AttachContext<Counter>) => {
    if (!ctx.destinations.some((cgroup) => cgroup.path === '/other')) return base.prepareSpin!(ctx)
    calls.push({ transaction: ctx.transaction, subsystem: base.name, phase: 'prepareSpin', ok: false })
    return E.left(ctx.refuse('ENOSPC', 'no room in /other'))
  },
})

// Sleeps only once armed, so the setup can use the synchronous API.
const build = (sleep: (label: string) => Promise<void>): World => {
  let armed = false
  const schedule = (label: string): Promise<void> | undefined => (armed ? sleep(label) : undefined)
  const calls: Array<CallRecord> = []
  const problems: Array<string> = []
  const moving = new Set<ThreadGroup>()
  const subsystems = [
    sleepy(recorder('a', calls), schedule, moving, problems),
    picky(recorder('c', calls), calls),
    sleepy(recorder('d', calls), schedule, moving, problems),
  ]
  const host = right(
    Host.create({
      subsystems,
      hierarchies: [
        { name: 'h', subsystems: ['a', 'c'] },
        { name: 'g', subsystems: ['d'] },
      ],
    }),
  )
  for (const hierarchy of host.hierarchies) for (const css of hierarchy.root.ownCss) if (css !== undefined) (css.state as Counter).tasks = 2
  for (const path of ['/src', '/dst', '/other']) right(host.mkdirSync({ hierarchy: 'h', path }))
  right(host.mkdirSync({ hierarchy: 'g', path: '/y' }))
  const p1 = right(host.forkSync(1)).tid
  const t1 = right(host.forkSync(p1, { thread: true })).tid
  const t2 = right(host.forkSync(p1, { thread: true })).tid
  const p2 = right(host.forkSync(1)).tid
  right(host.forkSync(p2, { thread: true }))
  right(host.attachSync({ mode: 'process', pid: p1, to: { hierarchy: 'h', path: '/src' } }))
  right(host.attachSync({ mode: 'process', pid: p2, to: { hierarchy: 'h', path: '/src' } }))
  calls.length = 0
  armed = true
  const groups = new Map([
    ['exitT2', host.task(p1)!.group],
    ['exitP2Group', host.task(p2)!.group],
    ['execT1', host.task(p1)!.group],
  ])
  return { host, calls, problems, pids: { p1, t1, t2, p2 }, initial: [...host.tasks()], groups }
}

const OPS = [
  'moveP1',
  'moveP1Multi',
  'moveT1',
  'allSrc',
  'allDstBack',
  'forkP1',
  'forkP1Thread',
  'forkT1Thread',
  'forkP2Thread',
  'exitT2',
  'exitP2Group',
  'execT1',
  'mkdirNew',
  'rmdirOther',
  'rmdirNew',
] as const
type Op = (typeof OPS)[number]

interface Started {
  readonly op: Op
  settled: boolean
  result?: E.Either<unknown, unknown>
}

const run = (world: World, op: Op): Promise<E.Either<unknown, unknown>> => {
  const { host, pids } = world
  const h = (path: string) => ({ hierarchy: 'h', path })
  switch (op) {
    case 'moveP1':
      return host.attach({ mode: 'process', pid: pids.p1, to: h('/dst') })()
    case 'moveP1Multi':
      return host.attach({ mode: 'process', pid: pids.p1, to: [{ hierarchy: 'g', path: '/y' }, h('/src')] })()
    case 'moveT1':
      return host.attach({ mode: 'thread', pid: pids.t1, to: h('/other') })()
    case 'allSrc':
      return host.attach({ mode: 'all', from: '/src', to: h('/dst') })()
    case 'allDstBack':
      return host.attach({ mode: 'all', from: '/dst', to: [h('/src'), { hierarchy: 'g', path: '/' }] })()
    case 'forkP1':
      return host.fork(pids.p1)()
    case 'forkP1Thread':
      return host.fork(pids.p1, { thread: true })()
    case 'forkT1Thread':
      return host.fork(pids.t1, { thread: true })()
    case 'forkP2Thread':
      return host.fork(pids.p2, { thread: true })()
    case 'exitT2':
      return host.exit(pids.t2)()
    case 'execT1':
      return host.exec(pids.t1)()
    case 'exitP2Group':
      return host.exit(pids.p2, { group: true })()
    case 'mkdirNew':
      return host.mkdir(h('/src/new'))()
    case 'rmdirOther':
      return host.rmdir(h('/other'))()
    case 'rmdirNew':
      return host.rmdir(h('/src/new'))()
  }
}

const expectConsistent = (world: World, started: ReadonlyArray<Started>): void => {
  const { host } = world
  expect(started.filter((entry) => !entry.settled).map((entry) => entry.op), 'operations still pending (deadlock)').toEqual([])
  expect(world.problems).toEqual([])
  expect(host.mutex.owner).toBeUndefined()
  expect(host.mutex.waiting).toBe(0)
  const liveTasks = [...host.tasks()].filter((task) => task.state !== 'zombie')
  for (const task of host.tasks()) {
    expect(task.group.lock.writeOwner, `thread-group lock of ${task.tgid}`).toBeUndefined()
    expect(task.group.lock.readCount).toBe(0)
  }
  // Nothing in two places, nothing lost, nothing in a removed cgroup.
  for (const hierarchy of host.hierarchies) {
    const seen: Array<number> = []
    for (const cgroup of hierarchy.root.subtree()) for (const task of cgroup.tasks()) seen.push(task.tid)
    expect(seen.sort((a, b) => a - b)).toEqual(liveTasks.map((task) => task.tid).sort((a, b) => a - b))
    for (const task of liveTasks) expect(host.cgroupOf(task, hierarchy).dead).toBe(false)
  }
  // Nothing lost: every task ever created is still findable under its tid,
  // unless it was reaped because its process ran exit or exec.
  const forked = started.flatMap((entry) =>
    entry.op.startsWith('fork') && entry.result !== undefined && E.isRight(entry.result) ? [entry.result.right as Task] : [],
  )
  const ended = new Set(
    started.flatMap((entry) =>
      (entry.op.startsWith('exit') || entry.op.startsWith('exec')) && entry.result !== undefined && E.isRight(entry.result)
        ? [world.groups.get(entry.op)!]
        : [],
    ),
  )
  for (const task of [...world.initial, ...forked]) {
    if (task.state === 'reaped') expect(ended.has(task.group), `task ${task.tid} lost`).toBe(true)
    else expect(host.task(task.tid), `task ${task.tid} findable`).toBe(task)
  }
  expect([...host.tasks()].every((task) => world.initial.includes(task) || forked.includes(task)), 'no task from nowhere').toBe(true)
  // Counters equal the live tasks using each css.
  for (const hierarchy of host.hierarchies) {
    for (const cgroup of hierarchy.root.subtree()) {
      for (const css of cgroup.ownCss as ReadonlyArray<Css<Counter> | undefined>) {
        if (css === undefined) continue
        const users = liveTasks.filter((task) => task.cssSet.css[css.subsystemId] === css).length
        expect(css.state.tasks, `${css.subsystem.name} counter in ${cgroup.path}`).toBe(users)
      }
    }
  }
  expectProtocol(world.calls, { ids: ['a', 'c', 'd'] })
}

describe('concurrent transactions, forks, exits and structure changes', () => {
  it('lose nothing, put nothing in two places, and all finish', async () => {
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), fc.array(fc.constantFrom(...OPS), { minLength: 2, maxLength: 8 }), async (s, ops) => {
        const world = build((label) => s.schedule(Promise.resolve(), label))
        const started: Array<Started> = ops.map((op) => ({ op, settled: false }))
        for (const entry of started) {
          // Start order is up to the scheduler too.
          void s
            .schedule(Promise.resolve(), `start ${entry.op}`)
            .then(() => run(world, entry.op))
            .then((result) => {
              entry.result = result
              entry.settled = true
            })
        }
        await s.waitIdle()
        expectConsistent(world, started)
      }),
      { numRuns: 150 },
    )
  })

  it('keeps fork and exit out of a process until its move has finished the attach phase', async () => {
    const log: Array<string> = []
    let open!: () => void
    const gate = new Promise<void>((resolve) => (open = resolve))
    const gated: Subsystem<null> = {
      name: 'a',
      createState: () => null,
      attach: () => {
        log.push('attach started')
        return gate.then(() => void log.push('attach finished'))
      },
    }
    const host = right(Host.create({ subsystems: [gated], hierarchies: [{ name: 'h', subsystems: ['a'] }] }))
    right(host.mkdirSync({ hierarchy: 'h', path: '/x' }))
    const process = host.spawn()
    const thread = right(host.forkSync(process.tid, { thread: true }))
    const other = host.spawn()
    const move = host.attach({ mode: 'process', pid: process.tid, to: { hierarchy: 'h', path: '/x' } })()
    const ticks = async () => {
      for (let i = 0; i < 5; i++) await Promise.resolve()
    }
    await ticks()
    expect(log).toEqual(['attach started'])
    const fork = host.fork(process.tid, { thread: true })().then((result) => {
      log.push('fork resolved')
      return result
    })
    const exit = host.exit(thread.tid)().then((result) => {
      log.push('exit resolved')
      return result
    })
    await ticks()
    expect(log).toEqual(['attach started'])
    // The synchronous forms refuse instead of waiting; other processes are not held up.
    expect(left(host.forkSync(process.tid))).toMatchObject({ errno: 'EAGAIN' })
    expect(left(host.exitSync(process.tid))).toMatchObject({ errno: 'EAGAIN' })
    right(host.forkSync(other.tid))
    // The group mutex is held too: synchronous structure changes and moves refuse.
    expect(left(host.attachSync({ mode: 'process', pid: other.tid, to: { hierarchy: 'h', path: '/x' } }))).toMatchObject({ errno: 'EAGAIN' })
    expect(left(host.mkdirSync({ hierarchy: 'h', path: '/y' }))).toMatchObject({ errno: 'EAGAIN' })
    open()
    right(await move)
    const child = right(await fork)
    right(await exit)
    expect(log).toEqual(['attach started', 'attach finished', 'fork resolved', 'exit resolved'])
    // The fork saw the process after the move: the child is born in /x.
    expect(host.cgroupOf(child, host.hierarchy('h')!).path).toBe('/x')
  })
})

// ------------------------------------------------------------------- v2

const V2_OPS = [
  'moveP1',
  'moveP2',
  'allAB',
  'threadT1',
  'enableM',
  'disableM',
  'enableMinA',
  'forkP1',
  'forkP1Thread',
  'exitT1',
  'mkdirD',
  'rmdirD',
] as const
type V2Op = (typeof V2_OPS)[number]

interface V2World {
  readonly host: Host
  readonly fs: VirtualCgroupFs
  readonly calls: Array<CallRecord>
  readonly problems: Array<string>
  readonly pids: { readonly p1: number; readonly t1: number; readonly p2: number }
}

// p (threaded) and m sleep in prepareSleep and attach; d tracks nothing else.
const buildV2 = (sleep: (label: string) => Promise<void>): V2World => {
  let armed = false
  const schedule = (label: string): Promise<void> | undefined => (armed ? sleep(label) : undefined)
  const calls: Array<CallRecord> = []
  const problems: Array<string> = []
  const moving = new Set<ThreadGroup>()
  const host = right(
    Host.create({
      subsystems: [
        { ...sleepy(recorder('p', calls), schedule, moving, problems), threaded: true },
        sleepy(recorder('m', calls), schedule, moving, problems),
      ],
      hierarchies: [{ name: 'u', version: 'v2', subsystems: ['p', 'm'] }],
    }),
  )
  const fs = new VirtualCgroupFs(host)
  for (const css of host.hierarchy('u')!.root.ownCss) if (css !== undefined) (css.state as Counter).tasks = 2
  for (const path of ['/a', '/a/b', '/c']) right(fs.mkdirSync(`/u${path}`))
  right(fs.writeSync('/u/cgroup.subtree_control', '+p'))
  const p1 = right(host.forkSync(1)).tid
  const t1 = right(host.forkSync(p1, { thread: true })).tid
  const p2 = right(host.forkSync(1)).tid
  right(fs.writeSync('/u/a/b/cgroup.procs', `${p1}`))
  right(fs.writeSync('/u/c/cgroup.procs', `${p2}`))
  calls.length = 0
  armed = true
  return { host, fs, calls, problems, pids: { p1, t1, p2 } }
}

const runV2 = (world: V2World, op: V2Op): Promise<E.Either<unknown, unknown>> => {
  const { host, fs, pids } = world
  const u = (path: string) => ({ hierarchy: 'u', path })
  switch (op) {
    case 'moveP1':
      return host.attach({ mode: 'process', pid: pids.p1, to: u('/c') })()
    case 'moveP2':
      return host.attach({ mode: 'process', pid: pids.p2, to: u('/a/b') })()
    case 'allAB':
      return host.attach({ mode: 'all', from: '/a/b', to: u('/c') })()
    case 'threadT1':
      return host.attach({ mode: 'thread', pid: pids.t1, to: u('/a/b') })()
    case 'enableM':
      return fs.write('/u/cgroup.subtree_control', '+m')()
    case 'disableM':
      return fs.write('/u/cgroup.subtree_control', '-m')()
    case 'enableMinA':
      return fs.write('/u/a/cgroup.subtree_control', '+m')()
    case 'forkP1':
      return host.fork(pids.p1)()
    case 'forkP1Thread':
      return host.fork(pids.p1, { thread: true })()
    case 'exitT1':
      return host.exit(pids.t1)()
    case 'mkdirD':
      return fs.mkdir('/u/a/b/d')()
    case 'rmdirD':
      return fs.rmdir('/u/a/b/d')()
  }
}

describe('v2: concurrent transactions and subtree_control changes', () => {
  it('keep every running task on the css its cgroup implies, counters consistent, all finish', async () => {
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), fc.array(fc.constantFrom(...V2_OPS), { minLength: 2, maxLength: 8 }), async (s, ops) => {
        const world = buildV2((label) => s.schedule(Promise.resolve(), label))
        const started = ops.map((op) => ({ op, settled: false }))
        for (const entry of started) {
          void s
            .schedule(Promise.resolve(), `start ${entry.op}`)
            .then(() => runV2(world, entry.op))
            .then(() => void (entry.settled = true))
        }
        await s.waitIdle()
        const { host } = world
        expect(started.filter((entry) => !entry.settled).map((entry) => entry.op), 'operations still pending (deadlock)').toEqual([])
        expect(world.problems).toEqual([])
        expect(host.mutex.owner).toBeUndefined()
        const live = [...host.tasks()].filter((task) => task.state !== 'zombie')
        const root = host.hierarchy('u')!.root
        const seen: Array<number> = []
        for (const cgroup of root.subtree()) for (const task of cgroup.tasks()) seen.push(task.tid)
        expect(seen.sort((a, b) => a - b)).toEqual(live.map((task) => task.tid).sort((a, b) => a - b))
        for (const task of live) {
          const cgroup = host.cgroupOf(task, host.hierarchy('u')!)
          expect(cgroup.dead).toBe(false)
          if (task.state !== 'running') continue
          for (const { id } of cgroup.hierarchy.subsystems)
            expect(task.cssSet.css[id], `css ${id} of ${task.tid} in ${cgroup.path}`).toBe(cgroup.effectiveCss(id))
          // No internal processes: a populated non-root cgroup enables no domain controller.
          if (!cgroup.isRoot) expect(cgroup.subtreeControl.has(host.subsystemId('m'))).toBe(false)
        }
        for (const cgroup of root.subtree()) {
          for (const css of cgroup.ownCss as ReadonlyArray<Css<Counter> | undefined>) {
            if (css === undefined) continue
            const users = live.filter((task) => task.cssSet.css[css.subsystemId] === css).length
            expect(css.state.tasks, `${css.subsystem.name} counter in ${cgroup.path}`).toBe(users)
          }
        }
        expectProtocol(world.calls, { ids: ['p', 'm'] })
      }),
      { numRuns: 150 },
    )
  })
})
