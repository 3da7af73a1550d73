/**
 * v2 `cgroup.subtree_control`: enabling or disabling controllers for a
 * cgroup's children. Children gain or lose a css, and every task below is
 * re-homed to the css_set with the new css in one transaction (the kernel's
 * `cgroup_update_dfl_csses`), with only the changed controllers called. A
 * failure puts masks and css back as they were.
 */
import * as E from 'fp-ts/lib/Either.js'
import type { Cgroup } from '../cgroup.ts'
import type { Css } from '../cssSet.ts'
import { systemError, type CgtxError, type SystemError } from '../errors.ts'
import type { Host } from '../host.ts'
import type { MigrationEntry } from '../subsystem.ts'
import type { ThreadGroup } from '../task.ts'
import { lockThreadGroups, runPhases, type MigrateOptions } from './migration.ts'
import { isPromiseLike, type MaybePromise } from './settle.ts'

/** Parses a `cgroup.subtree_control` write into subsystem ids to enable and disable. */
export const parseSubtreeControl = (
  host: Host,
  value: string,
): E.Either<'EINVAL', { readonly enable: Set<number>; readonly disable: Set<number> }> => {
  const enable = new Set<number>()
  const disable = new Set<number>()
  for (const token of value.trim().split(' ')) {
    if (token === '') continue
    const id = host.subsystemId(token.slice(1))
    if (id < 0) return E.left('EINVAL')
    if (token[0] === '+') {
      enable.add(id)
      disable.delete(id)
    } else if (token[0] === '-') {
      disable.add(id)
      enable.delete(id)
    } else return E.left('EINVAL')
  }
  return E.right({ enable, disable })
}

/** Applies parsed changes to `cgroup` (group mutex not yet held). */
export const changeSubtreeControl = (
  host: Host,
  cgroup: Cgroup,
  wanted: { readonly enable: ReadonlySet<number>; readonly disable: ReadonlySet<number> },
  options: MigrateOptions,
): MaybePromise<E.Either<CgtxError, void>> => {
  const operation = `write ${cgroup.hierarchy.name}:${cgroup.isRoot ? '' : cgroup.path}/cgroup.subtree_control`
  const owner = {}
  const locked: Array<ThreadGroup> = []
  const release = (): void => {
    for (const group of locked) if (group.lock.writeOwner === owner) group.lock.releaseWrite(owner)
    host.mutex.release(owner)
  }
  const underMutex = (): MaybePromise<E.Either<CgtxError, void>> => {
    let result: MaybePromise<E.Either<CgtxError, void>>
    try {
      result = changeLocked(host, cgroup, wanted, options, owner, operation, locked)
    } catch (error) {
      release()
      throw error
    }
    if (!isPromiseLike(result)) {
      release()
      return result
    }
    return Promise.resolve(result).finally(release)
  }
  if (host.mutex.tryAcquire(owner)) return underMutex()
  if (!options.sleep) return E.left(systemError('EAGAIN', operation, { reason: 'would block on cgroup_mutex' }))
  return Promise.resolve(host.mutex.acquire(owner)).then(underMutex)
}

const changeLocked = (
  host: Host,
  cgroup: Cgroup,
  wanted: { readonly enable: ReadonlySet<number>; readonly disable: ReadonlySet<number> },
  options: MigrateOptions,
  owner: object,
  operation: string,
  lockedGroups: Array<ThreadGroup>,
): MaybePromise<E.Either<CgtxError, void>> => {
  if (cgroup.dead) return E.left(systemError('ENODEV', operation))
  const available = controllersOf(cgroup)
  const enable = new Set<number>()
  const disable = new Set<number>()
  for (const id of wanted.enable) {
    if (cgroup.subtreeControl.has(id)) continue
    if (!available.has(id)) return E.left(systemError('ENOENT', operation, { reason: `${host.subsystems[id]!.name} not available` }))
    enable.add(id)
  }
  for (const id of wanted.disable) {
    if (!cgroup.subtreeControl.has(id)) continue
    for (const child of cgroup.children.values())
      if (child.subtreeControl.has(id)) return E.left(systemError('EBUSY', operation, { reason: `enabled in ${child.path}` }))
    disable.add(id)
  }
  if (enable.size === 0 && disable.size === 0) return E.right(undefined)
  const vetted = vetEnable(host, cgroup, enable)
  if (vetted !== undefined) return E.left(systemError(vetted, operation))

  const below = [...cgroup.children.values()].flatMap((child) => [...child.subtree()])
  const apply = (done: boolean): MaybePromise<E.Either<CgtxError, void>> => {
    if (!done) return E.left(systemError('EAGAIN', operation, { reason: 'would block on the thread-group lock' }))
    // New masks and css, then the taskset from the css_sets they imply.
    const created: Array<Css> = []
    const detached: Array<Css> = []
    for (const id of enable) cgroup.subtreeControl.add(id)
    for (const id of disable) cgroup.subtreeControl.delete(id)
    for (const child of cgroup.children.values()) {
      for (const id of enable) created.push(host.createCss(child, id, host.subsystems[id]!))
      for (const id of disable) {
        const css = child.ownCss[id]
        if (css === undefined) continue
        detached.push(css)
        child.ownCss[id] = undefined
      }
    }
    host.cssGeneration++
    const entries: Array<MigrationEntry> = []
    for (const at of below) {
      for (const task of at.tasks()) {
        if (task.state !== 'running') continue
        const to = host.cssSets.intern(task.cssSet.cgroups, host.cssOf(task.cssSet.cgroups))
        if (to !== task.cssSet) entries.push({ task, from: task.cssSet, to })
      }
    }
    const finish = (result: E.Either<SystemError, unknown>): E.Either<CgtxError, void> => {
      if (E.isLeft(result)) {
        for (const id of enable) cgroup.subtreeControl.delete(id)
        for (const id of disable) cgroup.subtreeControl.add(id)
        for (const css of created) css.cgroup.ownCss[css.subsystemId] = undefined
        for (const css of detached) css.cgroup.ownCss[css.subsystemId] = css
        host.cssGeneration++
        return result
      }
      for (const css of detached) {
        css.cgroup.ownCss[css.subsystemId] = css
        host.offlineCss(css)
      }
      return E.right(undefined)
    }
    if (entries.length === 0) return finish(E.right(undefined))
    const txId = host.newTransaction()
    host.trace.tick()
    host.trace.record(txId, undefined, 'begin', 'ok', operation)
    const ran = runPhases(host, txId, owner, operation, 'all', entries, [cgroup], lockedGroups, options)
    return isPromiseLike(ran) ? Promise.resolve(ran).then(finish) : finish(ran)
  }
  const done = lockThreadGroups(undefined, below, owner, lockedGroups, options.sleep)
  return isPromiseLike(done) ? Promise.resolve(done).then(apply) : apply(done)
}

/** `cgroup.controllers`: what the root has bound, or what the parent enables. */
export const controllersOf = (cgroup: Cgroup): ReadonlySet<number> =>
  cgroup.parent === undefined
    ? new Set(cgroup.hierarchy.subsystems.map((entry) => entry.id))
    : cgroup.parent.subtreeControl

// cgroup_vet_subtree_control_enable
const vetEnable = (host: Host, cgroup: Cgroup, enable: ReadonlySet<number>): 'EOPNOTSUPP' | 'EBUSY' | undefined => {
  if (enable.size === 0) return undefined
  if (!cgroup.domain.isValidDomain) return 'EOPNOTSUPP'
  if (cgroup.parent === undefined) return undefined
  const domainEnable = [...enable].some((id) => !host.threadedSubsystems.has(id))
  if (!domainEnable) return undefined
  if (cgroup.isThreadRoot || cgroup.threaded) return 'EOPNOTSUPP'
  if (cgroup.nrTasks > 0) return 'EBUSY'
  return undefined
}
