/**
 * The {@link Host}: one machine's worth of model — subsystems, hierarchies,
 * tasks, css_sets, the group mutex, the lock validator, the trace and the
 * clock — and the operations that change it: mkdir / rmdir, fork, exit,
 * exec, reap, and the attach transaction.
 *
 * Operations that may have to wait for a lock come twice: `op` returns a
 * `TaskEither` and waits like the kernel would; `opSync` returns an `Either`
 * and never waits, refusing with `EAGAIN` where the kernel would sleep.
 * Every input is decoded first; a refusal changes nothing.
 *
 * @module host
 */
import * as E from 'fp-ts/lib/Either.js'
import type * as TE from 'fp-ts/lib/TaskEither.js'
import * as t from 'io-ts'
import { Cgroup, Hierarchy, type HierarchyVersion } from './cgroup.ts'
import { realClock, type Clock } from './clock.ts'
import { CgroupName, CgroupRef, decode, HierarchyName, Pid, SchedPolicy } from './codecs.ts'
import { Css, type CssSet } from './cssSet.ts'
import { badArgument, faultError, isCgtxError, systemError, type BadArgument, type CgtxError, type SystemError } from './errors.ts'
import { LockValidator } from './lockValidator.ts'
import { SleepLock } from './locks.ts'
import { Trace } from './trace.ts'
import { callbacksOf, type AttachCallbacks } from './internal/callbacks.ts'
import { CssSetTable } from './internal/cssSetTable.ts'
import { transactionFor, transactionOf, Transaction, type AttachReport } from './internal/migration.ts'
import type { MaybePromise } from './internal/settle.ts'
import type { ForkContext, Subsystem } from './subsystem.ts'
import { Mm, Task, ThreadGroup, type TaskFlags } from './task.ts'

export type { AttachReport } from './internal/migration.ts'

/** Order in which aborts run: `reverse` undoes last-prepared first; `kernel` is ascending, like `cancel_attach`. */
export type AbortOrder = 'reverse' | 'kernel'

/** One hierarchy to mount. */
export interface HierarchySpec {
  /** Mount name, used as the first path component in the virtual cgroupfs. */
  readonly name: string
  /** Default `v1`. */
  readonly version?: HierarchyVersion
  /** Names of the subsystems bound here (each to at most one hierarchy). */
  readonly subsystems?: ReadonlyArray<string>
}

/** Everything a {@link Host} is built from. */
export interface HostConfig {
  /** The controllers, in subsystem-id order (callbacks run in this order). */
  readonly subsystems?: ReadonlyArray<Subsystem<any>>
  readonly hierarchies: ReadonlyArray<HierarchySpec>
  readonly abortOrder?: AbortOrder
  readonly clock?: Clock
  /** Events the trace keeps (default 4096; rounded up to a power of two). */
  readonly traceCapacity?: number
  /** Number of CPUs and memory nodes of the modelled machine (default 4 and 1). */
  readonly cpus?: number
  readonly mems?: number
}

const SubsystemShape = t.type({ name: t.string, createState: t.Function }, 'Subsystem')
const HostConfigCodec = t.intersection(
  [
    t.type({
      hierarchies: t.array(
        t.intersection([
          t.type({ name: t.string }),
          t.partial({ version: t.keyof({ v1: null, v2: null }), subsystems: t.array(t.string) }),
        ]),
      ),
    }),
    t.partial({
      subsystems: t.array(SubsystemShape),
      abortOrder: t.keyof({ reverse: null, kernel: null }),
      clock: t.type({ now: t.Function, setTimer: t.Function, sleep: t.Function }),
      traceCapacity: t.refinement(t.Int, (n) => n >= 16, 'Int >= 16'),
      cpus: t.refinement(t.Int, (n) => n >= 1 && n <= 4096, 'Int in 1..4096'),
      mems: t.refinement(t.Int, (n) => n >= 1 && n <= 1024, 'Int in 1..1024'),
    }),
  ],
  'HostConfig',
)

const ForkOptions = t.partial({ thread: t.boolean, comm: t.string }, 'ForkOptions')
/** How to fork: a new process (default) or a new thread of the same process. */
export type ForkOptions = t.TypeOf<typeof ForkOptions>
const ExitOptions = t.partial({ group: t.boolean }, 'ExitOptions')
/** `group: true` exits every thread of the process (exit_group). */
export type ExitOptions = t.TypeOf<typeof ExitOptions>
const KernelThreadOptions = t.partial({ comm: t.string, noSetAffinity: t.boolean }, 'KernelThreadOptions')
/** A kernel thread's name and whether it may change affinity (per-CPU kthreads may not). */
export type KernelThreadOptions = t.TypeOf<typeof KernelThreadOptions>
const Cpus = t.array(t.refinement(t.Int, (n) => n >= 0, 'cpu number'), 'Cpus')

/** The model of one machine. Build it with {@link Host.create}. */
export class Host {
  readonly subsystems: ReadonlyArray<Subsystem<any>>
  readonly hierarchies: ReadonlyArray<Hierarchy>
  readonly clock: Clock
  readonly trace: Trace
  readonly validator = new LockValidator()
  /** The group mutex (`cgroup_mutex`): one transaction or structural change at a time. */
  readonly mutex = new SleepLock('cgroup_mutex')
  readonly abortOrder: AbortOrder
  readonly cpus: number
  readonly mems: number
  /** @internal Each subsystem's attach callbacks, read once here (see internal/callbacks.ts). */
  readonly callbacks: ReadonlyArray<AttachCallbacks>
  /** Subsystem ids that may be enabled in v2 threaded subtrees. */
  readonly threadedSubsystems: ReadonlySet<number>
  /** @internal Bumped when cached css_set transitions may be stale. */
  cssGeneration = 1
  /** @internal */
  readonly cssSets = new CssSetTable()
  private readonly taskTable = new Map<number, Task>()
  private readonly mounts = new Map<string, Hierarchy>()
  private readonly subsystemHierarchy: Array<Hierarchy | undefined>
  private nextPid = 1
  private nextCgroupId = 1
  private nextCssId = 1
  private nextMmId = 1
  private nextTransaction = 1

  private constructor(config: HostConfig, trace: Trace) {
    this.subsystems = config.subsystems ?? []
    this.clock = config.clock ?? realClock
    this.trace = trace
    this.abortOrder = config.abortOrder ?? 'reverse'
    this.cpus = config.cpus ?? 4
    this.mems = config.mems ?? 1
    this.subsystemHierarchy = this.subsystems.map(() => undefined)
    this.callbacks = this.subsystems.map(callbacksOf)
    this.threadedSubsystems = new Set(
      this.subsystems.flatMap((subsystem, id) => (subsystem.threaded === true ? [id] : [])),
    )
    this.hierarchies = config.hierarchies.map((spec, index) => {
      const bound = (spec.subsystems ?? []).map((name) => {
        const id = this.subsystems.findIndex((subsystem) => subsystem.name === name)
        return { id, subsystem: this.subsystems[id]! }
      })
      bound.sort((a, b) => a.id - b.id)
      const hierarchy = new Hierarchy(index, spec.name, spec.version ?? 'v1', bound, this.nextCgroupId++)
      for (const { id } of bound) this.subsystemHierarchy[id] = hierarchy
      for (const { id, subsystem } of bound) this.createCss(hierarchy.root, id, subsystem)
      return hierarchy
    })
    for (const hierarchy of this.hierarchies) this.mounts.set(hierarchy.name, hierarchy)
    const rootCssSet = this.cssSets.intern(
      this.hierarchies.map((hierarchy) => hierarchy.root),
      this.cssOf(this.hierarchies.map((hierarchy) => hierarchy.root)),
    )
    // pid 1 (init) and pid 2 (kthreadd), as on a booted machine.
    const init = this.newTask(undefined, rootCssSet, { kthread: false, noSetAffinity: false }, 'init', false)
    this.enter(init)
    const kthreadd = this.newTask(undefined, rootCssSet, { kthread: true, noSetAffinity: false }, 'kthreadd', false)
    this.enter(kthreadd)
  }

  /** Builds a host; a malformed configuration is a {@link BadArgument}. */
  static create(config: unknown): E.Either<CgtxError, Host> {
    const decoded = decode(HostConfigCodec, config, 'config')
    if (E.isLeft(decoded)) return decoded
    const spec = config as HostConfig
    const names = new Set<string>()
    for (const [i, subsystem] of (spec.subsystems ?? []).entries()) {
      if (names.has(subsystem.name)) return E.left(badArgument(`config.subsystems.${i}.name`, subsystem.name, 'a unique subsystem name'))
      names.add(subsystem.name)
    }
    const bound = new Set<string>()
    const mounts = new Set<string>()
    let unified = 0
    for (const [i, hierarchy] of spec.hierarchies.entries()) {
      if (mounts.has(hierarchy.name) || !HierarchyName.is(hierarchy.name))
        return E.left(badArgument(`config.hierarchies.${i}.name`, hierarchy.name, 'a unique mount name'))
      mounts.add(hierarchy.name)
      if (hierarchy.version === 'v2' && ++unified > 1)
        return E.left(badArgument(`config.hierarchies.${i}.version`, 'v2', 'at most one v2 hierarchy'))
      for (const [j, name] of (hierarchy.subsystems ?? []).entries()) {
        const field = `config.hierarchies.${i}.subsystems.${j}`
        if (!names.has(name)) return E.left(badArgument(field, name, 'the name of a configured subsystem'))
        if (bound.has(name)) return E.left(badArgument(field, name, 'a subsystem not bound to another hierarchy'))
        bound.add(name)
      }
    }
    const clock = spec.clock ?? realClock
    return E.right(new Host(spec, new Trace(clock, spec.traceCapacity ?? 4096)))
  }

  // ---------------------------------------------------------------- lookups

  /** The hierarchy mounted under `name`. */
  hierarchy(name: string): Hierarchy | undefined {
    return this.mounts.get(name)
  }

  /** The hierarchy a subsystem is bound to, if any. */
  hierarchyOf(subsystemId: number): Hierarchy | undefined {
    return this.subsystemHierarchy[subsystemId]
  }

  /** Id (callback order) of the subsystem named `name`, or -1. */
  subsystemId(name: string): number {
    return this.subsystems.findIndex((subsystem) => subsystem.name === name)
  }

  /** The live cgroup named by `ref` (decoded), or an error: BadArgument, ENOENT. */
  cgroup(ref: unknown): E.Either<CgtxError, Cgroup> {
    const found = this.findCgroup(ref)
    if (found !== undefined) return E.right(found)
    const decoded = decode(CgroupRef, ref, 'cgroup')
    if (E.isLeft(decoded)) return decoded
    const hierarchy = this.hierarchy(decoded.right.hierarchy)
    if (hierarchy === undefined)
      return E.left(badArgument('cgroup.hierarchy', decoded.right.hierarchy, 'a mounted hierarchy'))
    const cgroup = hierarchy.lookup(decoded.right.path)
    return cgroup === undefined
      ? E.left(systemError('ENOENT', `lookup ${hierarchy.name}:${decoded.right.path}`))
      : E.right(cgroup)
  }

  /**
   * The live cgroup a `{ hierarchy, path }` names, or undefined — without
   * the codec, for hot paths: a live cgroup's hierarchy name and path are
   * valid by construction, so a ref that finds one is one the codec accepts.
   * {@link Host.cgroup} says why a ref finds nothing.
   */
  findCgroup(ref: unknown): Cgroup | undefined {
    if (typeof ref !== 'object' || ref === null) return undefined
    const { hierarchy, path } = ref as { hierarchy?: unknown; path?: unknown }
    if (typeof hierarchy !== 'string' || typeof path !== 'string') return undefined
    return this.mounts.get(hierarchy)?.lookup(path)
  }

  /** The task with this tid, unless reaped. */
  task(tid: number): Task | undefined {
    return this.taskTable.get(tid)
  }

  /** Every task not yet reaped. */
  tasks(): IterableIterator<Task> {
    return this.taskTable.values()
  }

  /** The cgroup a task is in on a hierarchy. */
  cgroupOf(task: Task, hierarchy: Hierarchy): Cgroup {
    return task.cssSet.cgroup(hierarchy.index)
  }

  // ------------------------------------------------------------ structure

  /** mkdir: creates `ref.path` (its parent must exist). */
  mkdir(ref: unknown): TE.TaskEither<CgtxError, Cgroup> {
    return () => this.withMutex(() => this.mkdirLocked(ref))
  }

  /** {@link Host.mkdir} without waiting: EAGAIN if a transaction holds the group mutex. */
  mkdirSync(ref: unknown): E.Either<CgtxError, Cgroup> {
    return this.withMutexSync(`mkdir`, () => this.mkdirLocked(ref))
  }

  /** rmdir: removes an empty cgroup with no children. */
  rmdir(ref: unknown): TE.TaskEither<CgtxError, void> {
    return () => this.withMutex(() => this.rmdirLocked(ref))
  }

  /** {@link Host.rmdir} without waiting. */
  rmdirSync(ref: unknown): E.Either<CgtxError, void> {
    return this.withMutexSync('rmdir', () => this.rmdirLocked(ref))
  }

  /** @internal Runs `op` holding the group mutex, waiting for it if needed. */
  async withMutex<A>(op: () => E.Either<CgtxError, A>): Promise<E.Either<CgtxError, A>> {
    const owner = {}
    await this.mutex.acquire(owner)
    try {
      return op()
    } finally {
      this.mutex.release(owner)
    }
  }

  /** @internal Runs `op` holding the group mutex, or refuses with EAGAIN. */
  withMutexSync<A>(operation: string, op: () => E.Either<CgtxError, A>): E.Either<CgtxError, A> {
    const owner = {}
    if (!this.mutex.tryAcquire(owner))
      return E.left(systemError('EAGAIN', operation, { reason: 'would block on cgroup_mutex' }))
    try {
      return op()
    } finally {
      this.mutex.release(owner)
    }
  }

  private mkdirLocked(ref: unknown): E.Either<CgtxError, Cgroup> {
    const decoded = decode(CgroupRef, ref, 'cgroup')
    if (E.isLeft(decoded)) return decoded
    const { hierarchy: mount, path } = decoded.right
    const hierarchy = this.hierarchy(mount)
    if (hierarchy === undefined) return E.left(badArgument('cgroup.hierarchy', mount, 'a mounted hierarchy'))
    const operation = `mkdir ${mount}:${path}`
    if (path === '/') return E.left(systemError('EEXIST', operation))
    const slash = path.lastIndexOf('/')
    const parent = hierarchy.lookup(slash === 0 ? '/' : path.slice(0, slash))
    if (parent === undefined) return E.left(systemError('ENOENT', operation))
    if (parent.dead) return E.left(systemError('ENODEV', operation))
    const name = path.slice(slash + 1)
    if (!CgroupName.is(name)) return E.left(badArgument('cgroup.path', path, 'CgroupPath'))
    if (parent.children.has(name)) return E.left(systemError('EEXIST', operation))
    // cgroup_check_hierarchy_limits: every ancestor's max.descendants and max.depth.
    let depth = 1
    for (let at: Cgroup | undefined = parent; at !== undefined; at = at.parent, depth++) {
      if (at.nrDescendants >= at.maxDescendants || depth > at.maxDepth)
        return E.left(systemError('EAGAIN', operation, { reason: `limit of ${at.path}` }))
    }
    const cgroup = new Cgroup(this.nextCgroupId++, name, parent, hierarchy)
    for (const { id, subsystem } of hierarchy.subsystems) {
      if (hierarchy.version === 'v1' || parent.subtreeControl.has(id)) this.createCss(cgroup, id, subsystem)
    }
    parent.children.set(name, cgroup)
    for (let at: Cgroup | undefined = parent; at !== undefined; at = at.parent) at.nrDescendants++
    return E.right(cgroup)
  }

  private rmdirLocked(ref: unknown): E.Either<CgtxError, void> {
    const found = this.cgroup(ref)
    if (E.isLeft(found)) return found
    const cgroup = found.right
    const operation = `rmdir ${cgroup.hierarchy.name}:${cgroup.path}`
    if (cgroup.parent === undefined) return E.left(systemError('EBUSY', operation, { reason: 'root' }))
    if (cgroup.populated) return E.left(systemError('EBUSY', operation, { reason: 'populated' }))
    if (cgroup.children.size > 0) return E.left(systemError('EBUSY', operation, { reason: 'has children' }))
    cgroup.dead = true
    cgroup.parent.children.delete(cgroup.name)
    if (cgroup.threaded) cgroup.parent.nrThreadedChildren--
    for (let at: Cgroup | undefined = cgroup.parent; at !== undefined; at = at.parent) at.nrDescendants--
    for (const css of cgroup.ownCss) if (css !== undefined) this.offlineCss(css)
    this.cssSets.dropUnused((cssSet) => cssSet.cgroups.includes(cgroup))
    // Zombies may still reference it: it is dying until their css_sets go.
    if (cgroup.cssSets.size > 0)
      for (let at: Cgroup | undefined = cgroup.parent; at !== undefined; at = at.parent) at.nrDyingDescendants++
    this.cssGeneration++
    return E.right(undefined)
  }

  /** @internal Creates and links a css. */
  createCss(cgroup: Cgroup, id: number, subsystem: Subsystem<any>): Css {
    const parent = cgroup.parent?.effectiveCss(id)
    const css = new Css(this.nextCssId++, subsystem, id, cgroup, parent, subsystem.createState(parent?.state, cgroup))
    cgroup.ownCss[id] = css
    return css
  }

  /** @internal Takes a css offline. */
  offlineCss(css: Css): void {
    css.online = false
    css.cgroup.ownCss[css.subsystemId] = undefined
    css.subsystem.offline?.(css)
  }

  /** @internal The css each subsystem uses for a tuple of cgroups (one per hierarchy). */
  cssOf(cgroups: ReadonlyArray<Cgroup>): Array<Css> {
    return this.subsystems.map((_, id) => {
      const hierarchy = this.subsystemHierarchy[id]
      return hierarchy === undefined ? undefined : cgroups[hierarchy.index]!.effectiveCss(id)
    }) as Array<Css>
  }

  // ----------------------------------------------------------------- tasks

  /** Starts a new process as a child of init (pid 1), in init's cgroups. */
  spawn(comm = 'task'): Task {
    const init = this.taskTable.get(1)!
    const task = this.newTask(init.group, init.cssSet, { kthread: false, noSetAffinity: false }, comm, false)
    this.enter(task)
    return task
  }

  /** Creates a kernel thread in the root cgroups (child of kthreadd). */
  createKernelThread(options: unknown = {}): E.Either<CgtxError, Task> {
    const decoded = decode(KernelThreadOptions, options, 'options')
    if (E.isLeft(decoded)) return decoded
    const kthreadd = this.taskTable.get(2)!
    const task = this.newTask(
      kthreadd.group,
      kthreadd.cssSet,
      { kthread: true, noSetAffinity: decoded.right.noSetAffinity ?? false },
      decoded.right.comm ?? 'kworker',
      false,
    )
    this.enter(task)
    return E.right(task)
  }

  /**
   * fork / clone: a new process (or, with `thread: true`, a new thread of the
   * same process) in the parent's css_set at fork time. Each subsystem's
   * canFork may refuse (e.g. pids with EAGAIN); then nothing exists.
   */
  fork(pid: unknown, options: unknown = {}): TE.TaskEither<CgtxError, Task> {
    return () => Promise.resolve(this.forkWith(pid, options, true))
  }

  /** {@link Host.fork} without waiting: EAGAIN while the process is being migrated. */
  forkSync(pid: unknown, options: unknown = {}): E.Either<CgtxError, Task> {
    return this.forkWith(pid, options, false) as E.Either<CgtxError, Task>
  }

  private forkWith(pid: unknown, options: unknown, wait: boolean): MaybePromise<E.Either<CgtxError, Task>> {
    const decodedPid = decode(Pid, pid, 'pid')
    if (E.isLeft(decodedPid)) return decodedPid
    const decoded = decode(ForkOptions, options, 'options')
    if (E.isLeft(decoded)) return decoded
    const parent = this.taskTable.get(decodedPid.right)
    const operation = `fork ${decodedPid.right}`
    if (parent === undefined || parent.state !== 'running') return E.left(systemError('ESRCH', operation))
    return this.withThreadGroupRead(parent.group, operation, wait, () => {
      if (parent.state !== 'running') return E.left(systemError('ESRCH', operation))
      const thread = decoded.right.thread ?? false
      const child = this.newTask(
        parent.group,
        parent.cssSet,
        parent.flags,
        decoded.right.comm ?? parent.comm,
        thread,
      )
      child.policy = parent.policy
      child.affinity = parent.affinity
      child.requestedAffinity = parent.requestedAffinity
      const contexts: Array<ForkContext<unknown>> = []
      for (const [id, subsystem] of this.subsystems.entries()) {
        const css = parent.cssSet.css[id]
        if (css === undefined) continue
        const ctx: ForkContext<unknown> = {
          child,
          parent,
          css,
          refuse: (errno, reason) => systemError(errno, operation, { subsystem: subsystem.name, reason }),
        }
        const refused = this.runForkHook(subsystem, ctx, operation)
        if (refused !== undefined) {
          for (const done of contexts) done.css.subsystem.cancelFork?.(done)
          this.forget(child)
          return E.left(refused)
        }
        contexts.push(ctx)
      }
      this.enter(child)
      for (const ctx of contexts) ctx.css.subsystem.fork?.(ctx)
      return E.right(child)
    })
  }

  private runForkHook(subsystem: Subsystem<any>, ctx: ForkContext<unknown>, operation: string): SystemError | undefined {
    if (subsystem.canFork === undefined) return undefined
    try {
      const result = subsystem.canFork(ctx)
      if (result !== undefined && E.isLeft(result)) return result.left
      return undefined
    } catch (error) {
      return isCgtxError(error) && error._tag === 'SystemError'
        ? error
        : faultError(operation, { kind: 'threw', subsystem: subsystem.name, phase: 'canFork', detail: error })
    }
  }

  /**
   * Begins exit (PF_EXITING): the task stays in its cgroup until
   * {@link Host.exit} finishes it, but migrations skip it from now on.
   */
  beginExitSync(pid: unknown, options: unknown = {}): E.Either<CgtxError, ReadonlyArray<Task>> {
    return this.exitWith(pid, options, false, false) as E.Either<CgtxError, ReadonlyArray<Task>>
  }

  /** Exits a thread (or, with `group: true`, the whole process); waits while the process is being migrated. */
  exit(pid: unknown, options: unknown = {}): TE.TaskEither<CgtxError, ReadonlyArray<Task>> {
    return () => Promise.resolve(this.exitWith(pid, options, true, true))
  }

  /** {@link Host.exit} without waiting: EAGAIN while the process is being migrated. */
  exitSync(pid: unknown, options: unknown = {}): E.Either<CgtxError, ReadonlyArray<Task>> {
    return this.exitWith(pid, options, true, false) as E.Either<CgtxError, ReadonlyArray<Task>>
  }

  private exitWith(
    pid: unknown,
    options: unknown,
    finish: boolean,
    wait: boolean,
  ): MaybePromise<E.Either<CgtxError, ReadonlyArray<Task>>> {
    const decodedPid = decode(Pid, pid, 'pid')
    if (E.isLeft(decodedPid)) return decodedPid
    const decoded = decode(ExitOptions, options, 'options')
    if (E.isLeft(decoded)) return decoded
    const task = this.taskTable.get(decodedPid.right)
    const operation = `exit ${decodedPid.right}`
    // init and kthreadd never exit, not even through exit_group from one of their threads.
    if (task === undefined || task.state === 'zombie' || task.state === 'reaped' || task.tid <= 2 || (decoded.right.group === true && task.tgid <= 2))
      return E.left(systemError('ESRCH', operation))
    return this.withThreadGroupRead(task.group, operation, wait, () => {
      const targets = decoded.right.group === true ? [...task.group.threads] : [task]
      const exited: Array<Task> = []
      for (const target of targets) {
        if (target.state === 'running') target.state = 'exiting'
        if (finish && target.state === 'exiting') {
          this.finishExit(target)
          exited.push(target)
        }
      }
      return E.right(finish ? exited : targets.filter((target) => target.state === 'exiting'))
    })
  }

  // exit_notify + cgroup_exit: leave the css_set's task list (no longer
  // populating), run exit hooks, and self-reap non-leader threads.
  private finishExit(task: Task, selfReap = true): void {
    const cssSet = task.cssSet
    cssSet.tasks.delete(task)
    cssSet.zombies.add(task)
    task.state = 'zombie'
    this.countTask(cssSet, -1)
    for (const [id, subsystem] of this.subsystems.entries()) {
      const css = cssSet.css[id]
      if (css !== undefined) subsystem.exit?.(task, css)
    }
    if (selfReap && !task.isLeader) this.release(task)
  }

  /** wait(): reaps a zombie process whose threads have all exited. */
  reap(pid: unknown): E.Either<CgtxError, void> {
    const decoded = decode(Pid, pid, 'pid')
    if (E.isLeft(decoded)) return decoded
    const task = this.taskTable.get(decoded.right)
    const operation = `reap ${decoded.right}`
    if (task === undefined || task.state !== 'zombie' || !task.isLeader)
      return E.left(systemError('ESRCH', operation, { reason: 'no such zombie' }))
    if (task.group.threads.size > 1) return E.left(systemError('EBUSY', operation, { reason: 'threads still running' }))
    this.release(task)
    return E.right(undefined)
  }

  private release(task: Task): void {
    const cssSet = task.cssSet
    for (const [id, subsystem] of this.subsystems.entries()) {
      const css = cssSet.css[id]
      if (css !== undefined) subsystem.release?.(task, css)
    }
    cssSet.zombies.delete(task)
    this.forget(task)
    if (cssSet.tasks.size === 0 && cssSet.zombies.size === 0) {
      for (const cgroup of cssSet.cgroups) {
        if (!cgroup.dead || cgroup.cssSets.size !== 1) continue
        for (let at: Cgroup | undefined = cgroup.parent; at !== undefined; at = at.parent) at.nrDyingDescendants--
      }
      this.cssSets.dropUnused((candidate) => candidate === cssSet && cssSet.cgroups.some((cgroup) => cgroup.dead))
    }
  }

  /**
   * exec: every other thread of the process exits and is reaped; an exec from
   * a non-leader thread takes over the process id; a new address space.
   */
  exec(pid: unknown): TE.TaskEither<CgtxError, Task> {
    return () => Promise.resolve(this.execWith(pid, true))
  }

  /** {@link Host.exec} without waiting. */
  execSync(pid: unknown): E.Either<CgtxError, Task> {
    return this.execWith(pid, false) as E.Either<CgtxError, Task>
  }

  private execWith(pid: unknown, wait: boolean): MaybePromise<E.Either<CgtxError, Task>> {
    const decoded = decode(Pid, pid, 'pid')
    if (E.isLeft(decoded)) return decoded
    const task = this.taskTable.get(decoded.right)
    const operation = `exec ${decoded.right}`
    if (task === undefined || task.state !== 'running' || task.flags.kthread) return E.left(systemError('ESRCH', operation))
    return this.withThreadGroupRead(task.group, operation, wait, () => {
      if (task.state !== 'running') return E.left(systemError('ESRCH', operation))
      const group = task.group
      for (const other of [...group.threads]) {
        if (other === task || other === group.leader) continue
        if (other.state === 'running') other.state = 'exiting'
        if (other.state === 'exiting') this.finishExit(other)
      }
      const leader = group.leader
      if (leader !== task) {
        // de_thread: the exec'ing thread becomes the leader and takes its pid.
        if (leader.state === 'running') leader.state = 'exiting'
        if (leader.state === 'exiting') this.finishExit(leader, false)
        this.release(leader)
        this.taskTable.delete(task.tid)
        task.tid = group.tgid
        this.taskTable.set(task.tid, task)
        group.leader = task
      }
      group.mm = new Mm(this.nextMmId++)
      return E.right(task)
    })
  }

  /** sched_setaffinity: sets the CPUs a task may run on (within its cpuset, if any). */
  setAffinity(pid: unknown, cpus: unknown): E.Either<CgtxError, void> {
    const decodedPid = decode(Pid, pid, 'pid')
    if (E.isLeft(decodedPid)) return decodedPid
    const decoded = decode(Cpus, cpus, 'cpus')
    if (E.isLeft(decoded)) return decoded
    const task = this.taskTable.get(decodedPid.right)
    const operation = `sched_setaffinity ${decodedPid.right}`
    if (task === undefined || task.state === 'reaped') return E.left(systemError('ESRCH', operation))
    if (task.flags.noSetAffinity) return E.left(systemError('EINVAL', operation))
    const wanted = [...new Set(decoded.right)].filter((cpu) => cpu < this.cpus).sort((a, b) => a - b)
    if (wanted.length === 0) return E.left(systemError('EINVAL', operation))
    // Within what every subsystem allows (cpuset's effective CPUs), as cpuset_cpus_allowed does.
    let allowed = wanted
    for (const [id, subsystem] of this.subsystems.entries()) {
      const css = task.cssSet.css[id]
      if (css === undefined || subsystem.cpusAllowed === undefined) continue
      const permitted = subsystem.cpusAllowed(css)
      allowed = allowed.filter((cpu) => permitted.includes(cpu))
    }
    if (allowed.length === 0) return E.left(systemError('EINVAL', operation, { reason: 'no allowed CPU in the mask' }))
    task.requestedAffinity = wanted
    task.affinity = allowed
    return E.right(undefined)
  }

  /** sched_setscheduler: sets the scheduling policy. */
  setPolicy(pid: unknown, policy: unknown): E.Either<CgtxError, void> {
    const decodedPid = decode(Pid, pid, 'pid')
    if (E.isLeft(decodedPid)) return decodedPid
    const decoded = decode(SchedPolicy, policy, 'policy')
    if (E.isLeft(decoded)) return decoded
    const task = this.taskTable.get(decodedPid.right)
    if (task === undefined || task.state === 'reaped') return E.left(systemError('ESRCH', `sched_setscheduler ${decodedPid.right}`))
    task.policy = decoded.right
    return E.right(undefined)
  }

  // ------------------------------------------------------------- attach

  /**
   * The attach transaction: moves one thread, one process or every task of a
   * cgroup into the destination cgroup(s), all or nothing.
   */
  attach(request: unknown): TE.TaskEither<CgtxError, AttachReport> {
    return () => {
      const tx = transactionFor(this, request, true)
      return Promise.resolve(tx instanceof Transaction ? tx.run() : E.left(tx))
    }
  }

  /**
   * {@link Host.attach} without waiting. Refuses with EAGAIN if a lock is
   * contended; a callback that returns a promise is a fault here (the
   * transaction fails, and a stray that later succeeds is aborted before the
   * group mutex is released).
   */
  attachSync(request: unknown): E.Either<CgtxError, AttachReport> {
    const tx = transactionFor(this, request, false)
    return tx instanceof Transaction ? tx.runNow() : E.left(tx)
  }

  /**
   * The attach transaction for callers that hold the objects (a `Task` of
   * this host, and one `Cgroup` per hierarchy): the same transaction as
   * {@link Host.attach} without resolving pids and paths. `mode` is `thread`
   * (default) or `process`.
   */
  attachTask(task: unknown, to: unknown, mode: unknown = 'thread'): TE.TaskEither<CgtxError, AttachReport> {
    return () => {
      const tx = this.taskTransaction(task, to, mode, true)
      return Promise.resolve(tx instanceof Transaction ? tx.run() : E.left(tx))
    }
  }

  /** {@link Host.attachTask} without waiting, with the rules of {@link Host.attachSync}. */
  attachTaskSync(task: unknown, to: unknown, mode: unknown = 'thread'): E.Either<CgtxError, AttachReport> {
    const tx = this.taskTransaction(task, to, mode, false)
    return tx instanceof Transaction ? tx.runNow() : E.left(tx)
  }

  private taskTransaction(task: unknown, to: unknown, mode: unknown, sleep: boolean): Transaction | CgtxError {
    if (mode !== 'thread' && mode !== 'process') return badArgument('mode', mode, "'thread' | 'process'")
    if (!(task instanceof Task) || !this.owns(task)) return badArgument('task', task, 'a task of this host')
    const destinations = to instanceof Cgroup ? [to] : to
    if (!Array.isArray(destinations) || destinations.length === 0) return badArgument('to', to, 'a cgroup of this host, or a non-empty array of them')
    // Field names are built only for an error: this runs on every worker migration.
    for (let i = 0; i < destinations.length; i++) {
      const cgroup: unknown = destinations[i]
      if (!(cgroup instanceof Cgroup) || this.hierarchies[cgroup.hierarchy.index] !== cgroup.hierarchy)
        return badArgument(destinationField(to, i), cgroup, 'a cgroup of this host')
      for (let j = 0; j < i; j++)
        if ((destinations[j] as Cgroup).hierarchy === cgroup.hierarchy) return badArgument(destinationField(to, i), cgroup.path, 'one destination per hierarchy')
    }
    return transactionOf(this, { mode, task }, destinations as ReadonlyArray<Cgroup>, sleep)
  }

  // A task object of this host: its css_set's cgroups are this host's hierarchies'.
  private owns(task: Task): boolean {
    const cgroups = task.cssSet.cgroups
    if (cgroups.length !== this.hierarchies.length) return false
    for (let i = 0; i < cgroups.length; i++) if (cgroups[i]!.hierarchy !== this.hierarchies[i]) return false
    return true
  }

  // ----------------------------------------------------------- internals

  /** @internal Next transaction number. */
  newTransaction(): number {
    return this.nextTransaction++
  }

  /** @internal Commit-point bookkeeping for one task: the css_set pointer switch. */
  moveTask(task: Task, to: CssSet): void {
    const from = task.cssSet
    from.tasks.delete(task)
    this.countTask(from, -1)
    task.cssSet = to
    to.tasks.add(task)
    this.countTask(to, +1)
  }

  // Adjusts each cgroup's live-task count and the populated state above it.
  private countTask(cssSet: CssSet, delta: 1 | -1): void {
    for (const cgroup of cssSet.cgroups) {
      const was = cgroup.populated
      cgroup.nrTasks += delta
      if (was !== cgroup.populated) this.propagatePopulated(cgroup, delta)
    }
  }

  // A cgroup that became (un)populated changes its parent's count, and so on
  // up while populated states keep flipping.
  private propagatePopulated(cgroup: Cgroup, delta: 1 | -1): void {
    for (let parent = cgroup.parent; parent !== undefined; parent = parent.parent) {
      const was = parent.populated
      parent.nrPopulatedChildren += delta
      if (was === parent.populated) return
    }
  }

  private newTask(group: ThreadGroup | undefined, cssSet: CssSet, flags: TaskFlags, comm: string, thread: boolean): Task {
    const tid = this.allocatePid()
    const owner = thread
      ? group!
      : new ThreadGroup(tid, new Mm(this.nextMmId++), group)
    const task = new Task(tid, owner, cssSet, flags, comm)
    if (!thread) owner.leader = task
    return task
  }

  // Makes a new task visible: pid table, thread group, css_set, counters.
  private enter(task: Task): void {
    this.taskTable.set(task.tid, task)
    task.group.threads.add(task)
    task.cssSet.tasks.add(task)
    this.countTask(task.cssSet, +1)
  }

  private forget(task: Task): void {
    task.state = 'reaped'
    if (this.taskTable.get(task.tid) === task) this.taskTable.delete(task.tid)
    task.group.threads.delete(task)
  }

  private allocatePid(): number {
    for (let tries = 0; tries < PID_LIMIT; tries++) {
      const pid = this.nextPid
      this.nextPid = this.nextPid >= PID_LIMIT ? 3 : this.nextPid + 1
      if (!this.taskTable.has(pid)) return pid
    }
    throw new Error('pid space exhausted')
  }

  private withThreadGroupRead<A>(
    group: ThreadGroup,
    operation: string,
    wait: boolean,
    op: () => E.Either<CgtxError, A>,
  ): MaybePromise<E.Either<CgtxError, A>> {
    const run = (): E.Either<CgtxError, A> => {
      try {
        return op()
      } finally {
        group.lock.releaseRead()
      }
    }
    if (group.lock.tryRead()) return run()
    if (!wait) return E.left(systemError('EAGAIN', operation, { reason: 'would block on the thread-group lock' }))
    const waited = group.lock.read(this)
    return Promise.resolve(waited).then(run)
  }
}

// The field of destination `i` of attachTask's `to` (one Cgroup, or an array of them).
const destinationField = (to: unknown, i: number): string => (to instanceof Cgroup ? 'to' : `to.${i}`)

const PID_LIMIT = 4_194_304

