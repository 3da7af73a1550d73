/**
 * All-or-nothing moves of real tasks across several hierarchies.
 *
 * The kernel makes one PID write atomic inside one hierarchy and nothing
 * more. {@link moveTasks} makes a set of PIDs × a set of destinations (one
 * per hierarchy) one transaction by compensation: it records where every
 * thread is (`/proc/PID/task/TID/cgroup`), checks everything it can before
 * the first write (arguments, destinations, confinement of every cgroup it
 * may have to write back to, and, given a model mirror, the model's verdict),
 * writes, and on any failure writes every moved task back. If a write-back
 * fails too, the outcome is `Indeterminate` and lists exactly where each
 * thread is, read back from /proc — never silence.
 *
 * @module transaction
 */
import * as E from 'fp-ts/lib/Either.js'
import type * as T from 'fp-ts/lib/Task.js'
import * as t from 'io-ts'
import { badArgument, CgroupRef, decode, Pid, realClock, systemError, type CgtxError, type Clock, type Host } from '@cgtx/core'
import type { ResolvedPath } from './cgroupfs.ts'
import { mountNamed, type CgroupMounts } from './discovery.ts'
import type { Placement } from './membership.ts'
import { retrying, retryPolicies, type RetryPolicies } from './retry.ts'

/** What a transaction needs from a backend; {@link KernelCgroupFs} provides it. */
export interface MoveBackend {
  readonly mounts: CgroupMounts
  resolve(path: unknown, access: 'read' | 'mkdir' | 'rmdir' | 'write'): E.Either<CgtxError, ResolvedPath>
  writeSync(path: string, value: string): E.Either<CgtxError, void>
  listSync(path: string): E.Either<CgtxError, ReadonlyArray<string>>
  placement(pid: number, tid?: number): E.Either<CgtxError, Placement>
  threads(pid: number): E.Either<CgtxError, ReadonlyArray<number>>
  tgid(tid: number): E.Either<CgtxError, number>
  exited(pid: number, tid?: number): boolean
}

const NonEmpty = <C extends t.Mixed>(codec: C, name: string) =>
  t.refinement(t.array(codec), (items) => items.length > 0, name)

/** Move whole processes (`cgroup.procs`) or single threads (`tasks` / `cgroup.threads`) into one cgroup per hierarchy. */
export const MoveRequest = t.strict(
  {
    mode: t.keyof({ process: null, thread: null }),
    pids: NonEmpty(Pid, 'NonEmptyPids'),
    to: NonEmpty(CgroupRef, 'NonEmptyDestinations'),
  },
  'MoveRequest',
)
/** A decoded {@link MoveRequest}. */
export type MoveRequest = t.TypeOf<typeof MoveRequest>

/** A model of the same machine, consulted before any real write. */
export interface ModelMirror {
  readonly host: Host
  /** The model pid standing for a real pid (undefined: not mirrored, not predicted). */
  readonly pidOf: (real: number) => number | undefined
}

/** Settings of one transaction. */
export interface MoveOptions {
  /** Retry settings over the defaults (see {@link RetryPolicies}). */
  readonly retry?: Partial<RetryPolicies>
  readonly clock?: Clock
  readonly mirror?: ModelMirror
}

/** Where one thread was in one hierarchy before the transaction. */
export interface ThreadOrigin {
  readonly tid: number
  readonly path: string
}

/** One PID written into one hierarchy. */
export interface Move {
  readonly pid: number
  readonly hierarchy: string
  /** Where its threads were. */
  readonly from: ReadonlyArray<ThreadOrigin>
  readonly to: string
  /** Writes it took (more than one when EINVAL was retried). */
  readonly attempts: number
}

/** A write-back that failed: the thread is not where it was. */
export interface Stuck {
  readonly tid: number
  readonly hierarchy: string
  /** Where it should have gone back to. */
  readonly expected: string
  readonly error: CgtxError
}

/** Every task moved, in every hierarchy. */
export interface Committed {
  readonly _tag: 'Committed'
  readonly moves: ReadonlyArray<Move>
  /** PIDs that exited before or during the move (policy `exited: skip`). */
  readonly skipped: ReadonlyArray<number>
}

/** Nothing is changed: refused before writing, or every write undone. */
export interface Aborted {
  readonly _tag: 'Aborted'
  readonly error: CgtxError
  /** The model predicted the refusal; nothing was written. */
  readonly predicted: boolean
  /** Moves that were made and written back. */
  readonly undone: ReadonlyArray<Move>
}

/** A write-back failed: `placement` says where every involved thread is now. */
export interface Indeterminate {
  readonly _tag: 'Indeterminate'
  readonly error: CgtxError
  readonly stuck: ReadonlyArray<Stuck>
  /** Moves that were written back successfully. */
  readonly undone: ReadonlyArray<Move>
  /** For every involved live thread, its cgroup in each destination hierarchy, read back from /proc. */
  readonly placement: ReadonlyArray<{ readonly pid: number; readonly tid: number; readonly cgroups: Placement }>
}

/** What {@link moveTasks} did. */
export type MoveOutcome = Committed | Aborted | Indeterminate

const aborted = (error: CgtxError, undone: ReadonlyArray<Move> = [], predicted = false): Aborted => ({ _tag: 'Aborted', error, predicted, undone })

/** The control file a PID is written to: `cgroup.procs` for processes, `tasks` (v1) / `cgroup.threads` (v2) for threads. */
export const pidFile = (version: 'v1' | 'v2', mode: 'process' | 'thread'): string =>
  mode === 'process' ? 'cgroup.procs' : version === 'v1' ? 'tasks' : 'cgroup.threads'

const dir = (hierarchy: string, path: string): string => `/${hierarchy}${path === '/' ? '' : path}`
const join = (hierarchy: string, path: string, file: string): string => `${dir(hierarchy, path)}/${file}`

interface Recorded {
  readonly pid: number
  readonly threads: ReadonlyArray<{ readonly tid: number; readonly placement: Placement }>
}

/**
 * Moves every PID of `request` into every destination, all or nothing.
 * Never throws and never rejects; every outcome is a {@link MoveOutcome}.
 */
export const moveTasks = (backend: MoveBackend, request: unknown, options: MoveOptions = {}): T.Task<MoveOutcome> => async () => {
  const decoded = decode(MoveRequest, request, 'request')
  if (E.isLeft(decoded)) return aborted(decoded.left)
  const policies = retryPolicies(options.retry ?? {})
  if (E.isLeft(policies)) return aborted(policies.left)
  const { mode, pids, to } = decoded.right
  const clock = options.clock ?? realClock

  // Destinations: one per mounted hierarchy, each an existing cgroup the backend may write.
  const versions = new Map<string, 'v1' | 'v2'>()
  for (const [i, ref] of to.entries()) {
    const found = mountNamed(backend.mounts, ref.hierarchy, `request.to.${i}.hierarchy`)
    if (E.isLeft(found)) return aborted(found.left)
    const mount = found.right
    if (versions.has(mount.name)) return aborted(badArgument(`request.to.${i}.hierarchy`, ref.hierarchy, 'one destination per hierarchy'))
    versions.set(mount.name, mount.version)
    const file = join(ref.hierarchy, ref.path, pidFile(mount.version, mode))
    const allowed = backend.resolve(file, 'write')
    if (E.isLeft(allowed)) return aborted(allowed.left)
    const listed = backend.listSync(dir(ref.hierarchy, ref.path))
    if (E.isLeft(listed)) return aborted(listed.left)
  }

  // Record where every thread is; a PID that is gone is skipped or fails, by policy.
  const recorded: Array<Recorded> = []
  const skipped: Array<number> = []
  for (const pid of pids) {
    const found = record(backend, pid, mode)
    if (E.isLeft(found)) {
      if (found.left._tag === 'SystemError' && found.left.errno === 'ESRCH' && policies.right.exited === 'skip') {
        skipped.push(pid)
        continue
      }
      return aborted(found.left)
    }
    recorded.push(found.right)
  }

  // Refuse to start what could not be undone: every origin must be writable too.
  for (const entry of recorded)
    for (const ref of to)
      for (const thread of entry.threads) {
        const origin = thread.placement[ref.hierarchy]
        if (origin === undefined) return aborted(systemError('ENOENT', `locate ${thread.tid} in ${ref.hierarchy}`))
        const back = backend.resolve(join(ref.hierarchy, origin, pidFile(versions.get(ref.hierarchy)!, 'thread')), 'write')
        if (E.isLeft(back)) return aborted(back.left)
      }

  // Model first: the model must accept the same moves.
  const modelUndo: Array<() => void> = []
  if (options.mirror !== undefined) {
    const refused = predict(options.mirror, recorded, mode, to, modelUndo)
    if (refused !== undefined) return aborted(refused, [], true)
  }
  const undoModel = (): void => {
    for (const undo of modelUndo.reverse()) undo()
  }

  // Write, recording each move.
  const moves: Array<Move> = []
  for (const entry of recorded) {
    let exited = false
    for (const ref of to) {
      if (exited) break
      const version = versions.get(ref.hierarchy)!
      const tried = await retrying(
        policies.right.justForked,
        'EINVAL',
        () => backend.writeSync(join(ref.hierarchy, ref.path, pidFile(version, mode)), `${entry.pid}`),
        clock,
      )
      if (E.isRight(tried.result)) {
        const from = entry.threads.map((thread) => ({ tid: thread.tid, path: thread.placement[ref.hierarchy]! }))
        moves.push({ pid: entry.pid, hierarchy: ref.hierarchy, from, to: ref.path, attempts: tried.attempts })
        continue
      }
      const error = tried.result.left
      if (error._tag === 'SystemError' && error.errno === 'ESRCH' && policies.right.exited === 'skip') {
        skipped.push(entry.pid)
        exited = true
        continue
      }
      const rolled = await rollBack(backend, moves, mode, versions, policies.right, clock)
      undoModel()
      if (rolled.stuck.length === 0) return aborted(error, rolled.undone)
      return { _tag: 'Indeterminate', error, stuck: rolled.stuck, undone: rolled.undone, placement: placementNow(backend, recorded, to) }
    }
  }
  return { _tag: 'Committed', moves, skipped }
}

const record = (backend: MoveBackend, pid: number, mode: 'process' | 'thread'): E.Either<CgtxError, Recorded> => {
  const tgid = backend.tgid(pid)
  if (E.isLeft(tgid)) return tgid
  const tids = mode === 'process' ? backend.threads(tgid.right) : E.right([pid])
  if (E.isLeft(tids)) return tids
  const threads: Array<Recorded['threads'][number]> = []
  for (const tid of tids.right) {
    // An exited thread (a zombie leader, say) is not moved by the kernel and has nothing to put back.
    if (backend.exited(tgid.right, tid)) continue
    const placement = backend.placement(tgid.right, tid)
    // A thread that ended between listing and reading has nothing left to move.
    if (E.isLeft(placement)) {
      if (placement.left._tag === 'SystemError' && placement.left.errno === 'ESRCH' && tid !== pid) continue
      return placement
    }
    threads.push({ tid, placement: placement.right })
  }
  return E.right({ pid, threads })
}

const predict = (
  mirror: ModelMirror,
  recorded: ReadonlyArray<Recorded>,
  mode: 'process' | 'thread',
  to: ReadonlyArray<{ readonly hierarchy: string; readonly path: string }>,
  undo: Array<() => void>,
): CgtxError | undefined => {
  const { host } = mirror
  for (const entry of recorded) {
    const pid = mirror.pidOf(entry.pid)
    const task = pid === undefined ? undefined : host.task(pid)
    if (pid === undefined || task === undefined) continue
    const tasks = mode === 'process' ? [...task.group.liveThreads()] : [task]
    const before = tasks.map((thread) => ({
      tid: thread.tid,
      at: to.flatMap((ref) => {
        const hierarchy = host.hierarchy(ref.hierarchy)
        return hierarchy === undefined ? [] : [{ hierarchy: ref.hierarchy, path: host.cgroupOf(thread, hierarchy).path }]
      }),
    }))
    const modelTo = to.filter((ref) => host.hierarchy(ref.hierarchy) !== undefined)
    if (modelTo.length === 0) continue
    const done = host.attachSync({ mode, pid, to: modelTo })
    if (E.isLeft(done)) {
      for (const step of undo.reverse()) step()
      undo.length = 0
      return done.left
    }
    undo.push(() => {
      for (const thread of before) if (thread.at.length > 0) host.attachSync({ mode: 'thread', pid: thread.tid, to: thread.at })
    })
  }
  return undefined
}

const rollBack = async (
  backend: MoveBackend,
  moves: ReadonlyArray<Move>,
  mode: 'process' | 'thread',
  versions: ReadonlyMap<string, 'v1' | 'v2'>,
  policies: RetryPolicies,
  clock: Clock,
): Promise<{ readonly undone: ReadonlyArray<Move>; readonly stuck: ReadonlyArray<Stuck> }> => {
  const undone: Array<Move> = []
  const stuck: Array<Stuck> = []
  for (const move of [...moves].reverse()) {
    const version = versions.get(move.hierarchy)!
    const origins = new Set(move.from.map((origin) => origin.path))
    // One process write when all its threads came from one cgroup; else each thread back on its own.
    const writes =
      mode === 'process' && origins.size === 1
        ? [{ tid: move.pid, path: move.from[0]!.path, file: pidFile(version, 'process') }]
        : move.from.map((origin) => ({ tid: origin.tid, path: origin.path, file: pidFile(version, 'thread') }))
    let ok = true
    for (const write of writes) {
      const tried = await retrying(policies.justForked, 'EINVAL', () => backend.writeSync(join(move.hierarchy, write.path, write.file), `${write.tid}`), clock)
      if (E.isRight(tried.result)) continue
      // A task that has gone is nowhere to be put back: not stuck.
      if (tried.result.left._tag === 'SystemError' && tried.result.left.errno === 'ESRCH') continue
      ok = false
      stuck.push({ tid: write.tid, hierarchy: move.hierarchy, expected: write.path, error: tried.result.left })
    }
    if (ok) undone.push(move)
  }
  return { undone, stuck }
}

const placementNow = (
  backend: MoveBackend,
  recorded: ReadonlyArray<Recorded>,
  to: ReadonlyArray<{ readonly hierarchy: string }>,
): Indeterminate['placement'] =>
  recorded.flatMap((entry) =>
    entry.threads.flatMap((thread) => {
      const now = backend.placement(entry.pid, thread.tid)
      if (E.isLeft(now)) return []
      const cgroups: Record<string, string> = {}
      for (const ref of to) {
        const path = now.right[ref.hierarchy]
        if (path !== undefined) cgroups[ref.hierarchy] = path
      }
      return [{ pid: entry.pid, tid: thread.tid, cgroups }]
    }),
  )
