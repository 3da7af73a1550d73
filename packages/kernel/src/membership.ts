/**
 * Where a real task is: `/proc/PID/task/TID/cgroup` read and mapped to the
 * discovered mounts, so each line becomes `{ mount name → cgroup path }` in
 * the same naming as backend paths (`pids` → `/a/b`).
 *
 * @module membership
 */
import * as E from 'fp-ts/lib/Either.js'
import { readdirSync, readFileSync } from 'node:fs'
import { systemError, type CgtxError } from '@cgtx/core'
import type { CgroupMount, CgroupMounts } from './discovery.ts'
import { fromNodeError } from './internal/errno.ts'

/** A task's cgroup in every discovered hierarchy, by mount name. */
export type Placement = Readonly<Record<string, string>>

const sameSet = (a: ReadonlyArray<string>, b: ReadonlyArray<string>): boolean => a.length === b.length && a.every((item) => b.includes(item))

// Paths are relative to the hierarchy root; a mount showing a sub-tree shows them relative to its root.
const underMount = (mount: CgroupMount, path: string): string => {
  const clean = path.endsWith(' (deleted)') ? path.slice(0, -' (deleted)'.length) : path
  if (mount.root === '/' || !clean.startsWith(mount.root)) return clean
  return clean.slice(mount.root.length) || '/'
}

/** Parses the text of a `/proc/…/cgroup` file against the mounts; hierarchies not mounted are left out. */
export const parseProcCgroup = (mounts: CgroupMounts, text: string): Placement => {
  const placement: Record<string, string> = {}
  for (const line of text.split('\n')) {
    const match = /^(\d+):([^:]*):(.*)$/.exec(line)
    if (match === null) continue
    const [, id, list, path] = match
    const controllers = list === '' ? [] : list!.split(',')
    const mount =
      id === '0'
        ? mounts.mounts.find((candidate) => candidate.version === 'v2')
        : mounts.mounts.find((candidate) => candidate.version === 'v1' && sameSet(candidate.controllers, controllers))
    if (mount !== undefined) placement[mount.name] = underMount(mount, path!)
  }
  return placement
}

/** The placement of thread `tid` of process `pid` (`tid` defaults to `pid`). */
export const placementOf = (mounts: CgroupMounts, pid: number, tid: number = pid): E.Either<CgtxError, Placement> => {
  const path = `/proc/${pid}/task/${tid}/cgroup`
  try {
    return E.right(parseProcCgroup(mounts, readFileSync(path, 'utf8')))
  } catch (error) {
    const failed = fromNodeError(error, `read ${path}`)
    return E.left(failed.errno === 'ENOENT' ? systemError('ESRCH', `read ${path}`) : failed)
  }
}

/** The thread ids of process `pid`, ascending (ESRCH once it is reaped). */
export const threadsOf = (pid: number): E.Either<CgtxError, ReadonlyArray<number>> => {
  try {
    return E.right(readdirSync(`/proc/${pid}/task`).map(Number).sort((a, b) => a - b))
  } catch (error) {
    const failed = fromNodeError(error, `list /proc/${pid}/task`)
    return E.left(failed.errno === 'ENOENT' ? systemError('ESRCH', `list /proc/${pid}/task`) : failed)
  }
}

/** The process a thread belongs to (its Tgid), ESRCH if there is no such task. */
export const tgidOf = (tid: number): E.Either<CgtxError, number> => {
  try {
    const match = /^Tgid:\s+(\d+)$/m.exec(readFileSync(`/proc/${tid}/status`, 'utf8'))
    return match === null ? E.left(systemError('EIO', `read /proc/${tid}/status`, { reason: 'no Tgid line' })) : E.right(Number(match[1]))
  } catch (error) {
    const failed = fromNodeError(error, `read /proc/${tid}/status`)
    return E.left(failed.errno === 'ENOENT' ? systemError('ESRCH', `read /proc/${tid}/status`) : failed)
  }
}

/**
 * True if thread `tid` of process `pid` has exited (a zombie, or dead and
 * not yet gone): it cannot be moved, and on v1 its `/proc/…/cgroup` lines
 * all read `/`, so its placement says nothing.
 */
export const hasExited = (pid: number, tid: number = pid): boolean => {
  try {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8')
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)
    return state === 'Z' || state === 'X'
  } catch {
    return true
  }
}
