/**
 * An in-memory {@link MoveBackend} for the transaction's retry and rollback
 * paths that the real kernel cannot be made to hit on demand: each write
 * consults a script of failures before moving tasks in a placement table.
 */
import * as E from 'fp-ts/lib/Either.js'
import { systemError, type CgtxError, type Errno } from '@cgtx/core'
import { discover, type MoveBackend, type Placement, type ResolvedPath } from '@cgtx/kernel'

const mountinfo = [
  '39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids',
  '37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer',
  '41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw',
].join('\n')
const procCgroups = 'pids\t8\t1\t1\nfreezer\t6\t1\t1\n'

export interface Failure {
  /** Fails writes whose path ends with this and whose value is this pid (any, if undefined). */
  readonly path: string
  readonly pid?: number
  readonly errno: Errno
  /** How many times (default: forever). */
  times?: number
}

export class FakeBackend implements MoveBackend {
  readonly mounts = E.getOrElseW(() => {
    throw new Error('fixture')
  })(discover({ mountinfo, procCgroups, readControllers: () => [] }))
  readonly writes: Array<{ path: string; value: string; ok: boolean }> = []
  readonly failures: Array<Failure> = []
  /** tid → placement; pid → threads. */
  readonly placements = new Map<number, Record<string, string>>()
  readonly processes = new Map<number, Array<number>>()

  spawn(pid: number, threads: ReadonlyArray<number> = []): void {
    this.processes.set(pid, [pid, ...threads])
    for (const tid of [pid, ...threads]) this.placements.set(tid, { pids: '/', freezer: '/', unified: '/' })
  }

  resolve(path: unknown): E.Either<CgtxError, ResolvedPath> {
    const [, name, ...components] = String(path).split('/')
    const mount = this.mounts.mounts.find((m) => m.name === name)!
    return E.right({ mount, components, real: `/${components.slice(0, -1).join('/')}` })
  }

  listSync(): E.Either<CgtxError, ReadonlyArray<string>> {
    return E.right([])
  }

  placement(_pid: number, tid?: number): E.Either<CgtxError, Placement> {
    const found = this.placements.get(tid ?? _pid)
    return found === undefined ? E.left(systemError('ESRCH', 'placement')) : E.right({ ...found })
  }

  threads(pid: number): E.Either<CgtxError, ReadonlyArray<number>> {
    const found = this.processes.get(pid)
    return found === undefined ? E.left(systemError('ESRCH', 'threads')) : E.right(found)
  }

  tgid(tid: number): E.Either<CgtxError, number> {
    for (const [pid, tids] of this.processes) if (tids.includes(tid)) return E.right(pid)
    return E.left(systemError('ESRCH', 'tgid'))
  }

  exited(): boolean {
    return false
  }

  writeSync(path: string, value: string): E.Either<CgtxError, void> {
    const pid = Number(value)
    const failure = this.failures.find((f) => path.endsWith(f.path) && (f.pid === undefined || f.pid === pid) && (f.times === undefined || f.times > 0))
    if (failure !== undefined) {
      if (failure.times !== undefined) failure.times--
      this.writes.push({ path, value, ok: false })
      return E.left(systemError(failure.errno, `write ${path}`))
    }
    const [, hierarchy, ...rest] = path.split('/')
    const file = rest.pop()!
    const cgroup = `/${rest.join('/')}`
    const tgid = this.tgid(pid)
    if (E.isLeft(tgid)) return tgid
    const tids = file === 'cgroup.procs' ? this.processes.get(tgid.right)! : [pid]
    for (const tid of tids) this.placements.get(tid)![hierarchy!] = cgroup
    this.writes.push({ path, value, ok: true })
    return E.right(undefined)
  }
}
