/**
 * The virtual cgroupfs: every user-visible operation as a path operation
 * answering the value or the errno the kernel would. Paths name the
 * hierarchy's mount first: `/pids/a/b/pids.max`, `/unified/a/cgroup.procs`.
 * {@link CgroupFs} is the interface the kernel backend implements too, so one
 * scenario runs on both and their answers can be compared.
 *
 * @module cgroupfs
 */
import * as E from 'fp-ts/lib/Either.js'
import type * as TE from 'fp-ts/lib/TaskEither.js'
import * as t from 'io-ts'
import type { Cgroup, Hierarchy } from './cgroup.ts'
import { decode } from './codecs.ts'
import { badArgument, isCgtxError, systemError, type CgtxError, type Errno } from './errors.ts'
import type { Host } from './host.ts'
import { kstrtoint, kstrtoll, strstrip } from './internal/kstrto.ts'
import { isPromiseLike, type MaybePromise } from './internal/settle.ts'
import { changeSubtreeControl, controllersOf, parseSubtreeControl } from './internal/subtreeControl.ts'
import type { ControlFile } from './subsystem.ts'

/** Path operations on a cgroup filesystem (model or kernel). */
export interface CgroupFs {
  /** Creates the cgroup directory at `path`. */
  mkdir(path: string): TE.TaskEither<CgtxError, void>
  /** Removes the cgroup directory at `path`. */
  rmdir(path: string): TE.TaskEither<CgtxError, void>
  /** Reads a control file. */
  read(path: string): TE.TaskEither<CgtxError, string>
  /** Writes a control file (one `write(2)`). */
  write(path: string, value: string): TE.TaskEither<CgtxError, void>
  /** Lists a cgroup directory: its files and child cgroups, sorted. */
  list(path: string): TE.TaskEither<CgtxError, ReadonlyArray<string>>
}

/** An absolute path of at least the mount component. */
export const FsPath = t.refinement(t.string, (s) => /^\/[^/]+(\/[^/]+)*$/.test(s) && !s.includes('\n'), 'FsPath')

type Reply<A> = MaybePromise<E.Either<CgtxError, A>>

interface CoreFile {
  readonly name: string
  readonly on: 'root' | 'nonroot' | 'all'
  readonly versions: ReadonlyArray<'v1' | 'v2'>
  readonly read?: (fs: VirtualCgroupFs, cgroup: Cgroup, operation: string) => E.Either<CgtxError, string>
  readonly write?: (fs: VirtualCgroupFs, cgroup: Cgroup, value: string, operation: string, wait: boolean) => Reply<void>
}

const lines = (values: Iterable<number>): string => [...values].map((value) => `${value}\n`).join('')
const limitText = (limit: number): string => (limit === Number.POSITIVE_INFINITY ? 'max\n' : `${limit}\n`)
const flag = (value: boolean): string => (value ? '1\n' : '0\n')

// v1 (the cgroup1 pidlist): tgids of live tasks, sorted and de-duplicated,
// so a process is listed wherever any of its threads is.
// v2 (css_task_iter): in iteration order (css_sets, then tasks in migration
// order), and a process only where its leader is — also a zombie leader whose
// threads still live.
const procsOf = (cgroup: Cgroup): ReadonlyArray<number> => {
  if (cgroup.hierarchy.version === 'v1') return [...new Set([...cgroup.tasks()].map((task) => task.tgid))].sort((a, b) => a - b)
  const out: Array<number> = []
  for (const cssSet of cgroup.cssSets) {
    for (const task of cssSet.tasks) if (task.isLeader) out.push(task.tgid)
    for (const task of cssSet.zombies) if (task.isLeader && [...task.group.threads].some((thread) => thread.state !== 'zombie')) out.push(task.tgid)
  }
  return out
}
const threadsOf = (cgroup: Cgroup): ReadonlyArray<number> => {
  const tids = [...cgroup.tasks()].map((task) => task.tid)
  return cgroup.hierarchy.version === 'v1' ? tids.sort((a, b) => a - b) : tids
}

const fail = (errno: Errno, operation: string, reason?: string): E.Either<CgtxError, never> =>
  E.left(systemError(errno, operation, reason === undefined ? undefined : { reason }))

const writeLimit = (apply: (value: number) => void) => (fs: VirtualCgroupFs, _cgroup: Cgroup, value: string, operation: string): Reply<void> => {
  const text = strstrip(value)
  let limit: number
  if (text === 'max') limit = Number.POSITIVE_INFINITY
  else {
    const parsed = kstrtoint(text, 0)
    if (typeof parsed === 'string') return fail(parsed, operation)
    if (parsed < 0) return fail('ERANGE', operation)
    // The kernel stores `max` as INT_MAX, so INT_MAX reads back as `max`.
    limit = parsed === 0x7fff_ffff ? Number.POSITIVE_INFINITY : parsed
  }
  return fs.host.withMutexSync(operation, () => {
    apply(limit)
    return E.right(undefined)
  })
}

// A u64 file (write_u64): kstrtoull, base 0, no whitespace stripped but one trailing newline, no minus sign.
const writeFlag = (apply: (cgroup: Cgroup, value: boolean) => void) => (_fs: VirtualCgroupFs, cgroup: Cgroup, value: string, operation: string): Reply<void> => {
  if (value.startsWith('-')) return fail('EINVAL', operation)
  const parsed = kstrtoll(value, 0)
  if (typeof parsed === 'string') return fail(parsed, operation)
  apply(cgroup, parsed !== 0n)
  return E.right(undefined)
}

const readOnly = (name: string, on: CoreFile['on'], versions: CoreFile['versions'], read: NonNullable<CoreFile['read']>): CoreFile => ({ name, on, versions, read })

const coreFiles: ReadonlyArray<CoreFile> = [
  {
    name: 'cgroup.procs',
    on: 'all',
    versions: ['v1', 'v2'],
    read: (_fs, cgroup, operation) =>
      cgroup.hierarchy.version === 'v2' && cgroup.threaded ? fail('EOPNOTSUPP', operation) : E.right(lines(procsOf(cgroup))),
    write: (fs, cgroup, value, operation, wait) => fs.attachPid(cgroup, value, 'process', operation, wait),
  },
  {
    name: 'tasks',
    on: 'all',
    versions: ['v1'],
    read: (_fs, cgroup) => E.right(lines(threadsOf(cgroup))),
    write: (fs, cgroup, value, operation, wait) => fs.attachPid(cgroup, value, 'thread', operation, wait),
  },
  {
    name: 'cgroup.threads',
    on: 'all',
    versions: ['v2'],
    read: (_fs, cgroup) => E.right(lines(threadsOf(cgroup))),
    write: (fs, cgroup, value, operation, wait) => fs.attachPid(cgroup, value, 'thread', operation, wait),
  },
  { name: 'cgroup.clone_children', on: 'all', versions: ['v1'], read: (_fs, cgroup) => E.right(flag(cgroup.cloneChildren)), write: writeFlag((cgroup, on) => void (cgroup.cloneChildren = on)) },
  { name: 'notify_on_release', on: 'all', versions: ['v1'], read: (_fs, cgroup) => E.right(flag(cgroup.notifyOnRelease)), write: writeFlag((cgroup, on) => void (cgroup.notifyOnRelease = on)) },
  { name: 'release_agent', on: 'root', versions: ['v1'], read: () => E.right('\n'), write: () => E.right(undefined) },
  readOnly('cgroup.sane_behavior', 'root', ['v1'], () => E.right('0\n')),
  {
    name: 'cgroup.type',
    on: 'nonroot',
    versions: ['v2'],
    read: (_fs, cgroup) => E.right(`${cgroup.type}\n`),
    write: (fs, cgroup, value, operation) =>
      strstrip(value) !== 'threaded' ? fail('EINVAL', operation) : fs.host.withMutexSync(operation, () => fs.makeThreaded(cgroup, operation)),
  },
  readOnly('cgroup.events', 'nonroot', ['v2'], (_fs, cgroup) => E.right(`populated ${cgroup.populated ? 1 : 0}\nfrozen ${cgroup.frozen ? 1 : 0}\n`)),
  {
    name: 'cgroup.max.depth',
    on: 'all',
    versions: ['v2'],
    read: (_fs, cgroup) => E.right(limitText(cgroup.maxDepth)),
    write: (fs, cgroup, value, operation) => writeLimit((limit) => void (cgroup.maxDepth = limit))(fs, cgroup, value, operation),
  },
  {
    name: 'cgroup.max.descendants',
    on: 'all',
    versions: ['v2'],
    read: (_fs, cgroup) => E.right(limitText(cgroup.maxDescendants)),
    write: (fs, cgroup, value, operation) => writeLimit((limit) => void (cgroup.maxDescendants = limit))(fs, cgroup, value, operation),
  },
  readOnly('cgroup.controllers', 'all', ['v2'], (fs, cgroup) => E.right(fs.subsystemNames(controllersOf(cgroup)))),
  {
    name: 'cgroup.subtree_control',
    on: 'all',
    versions: ['v2'],
    read: (fs, cgroup) => E.right(fs.subsystemNames(cgroup.subtreeControl)),
    write: (fs, cgroup, value, operation, wait) => {
      const parsed = parseSubtreeControl(fs.host, value)
      if (E.isLeft(parsed)) return fail(parsed.left, operation)
      return changeSubtreeControl(fs.host, cgroup, parsed.right, { sleep: wait, guard: {} })
    },
  },
  readOnly('cgroup.stat', 'all', ['v2'], (fs, cgroup) => E.right(fs.stat(cgroup))),
  {
    name: 'cgroup.kill',
    on: 'nonroot',
    versions: ['v2'],
    write: (fs, cgroup, value, operation, wait) => {
      const parsed = kstrtoint(strstrip(value))
      if (typeof parsed === 'string') return fail(parsed, operation)
      if (parsed !== 1) return fail('ERANGE', operation)
      if (cgroup.threaded) return fail('EOPNOTSUPP', operation)
      return fs.kill(cgroup, operation, wait)
    },
  },
]

const exists = (file: { readonly on?: 'root' | 'nonroot' | 'all'; readonly versions?: ReadonlyArray<'v1' | 'v2'> }, cgroup: Cgroup): boolean =>
  (file.versions ?? ['v1', 'v2']).includes(cgroup.hierarchy.version) &&
  ((file.on ?? 'nonroot') === 'all' || (file.on ?? 'nonroot') === (cgroup.isRoot ? 'root' : 'nonroot'))

type Resolved =
  | { readonly kind: 'dir'; readonly hierarchy: Hierarchy; readonly cgroup: Cgroup }
  | { readonly kind: 'core'; readonly cgroup: Cgroup; readonly file: CoreFile }
  | { readonly kind: 'subsystem'; readonly cgroup: Cgroup; readonly file: ControlFile<unknown>; readonly subsystemId: number }

/** The model's cgroupfs over a {@link Host}. */
export class VirtualCgroupFs implements CgroupFs {
  constructor(readonly host: Host) {}

  mkdir(path: string): TE.TaskEither<CgtxError, void> {
    return () => Promise.resolve(this.mkdirNow(path, true))
  }

  rmdir(path: string): TE.TaskEither<CgtxError, void> {
    return () => Promise.resolve(this.rmdirNow(path, true))
  }

  read(path: string): TE.TaskEither<CgtxError, string> {
    return () => Promise.resolve(this.readSync(path))
  }

  write(path: string, value: string): TE.TaskEither<CgtxError, void> {
    return () => Promise.resolve(this.writeWith(path, value))
  }

  list(path: string): TE.TaskEither<CgtxError, ReadonlyArray<string>> {
    return () => Promise.resolve(this.listSync(path))
  }

  /** {@link VirtualCgroupFs.read}, synchronously (reads never wait). */
  readSync(path: string): E.Either<CgtxError, string> {
    const resolved = this.resolve(path, 'read')
    if (E.isLeft(resolved)) return resolved
    const target = resolved.right
    const operation = `read ${path}`
    if (target.kind === 'dir') return fail('EISDIR', operation)
    // A file without a show / write handler answers EINVAL (cgroup_seqfile_show, cgroup_file_write).
    if (target.kind === 'core') return target.file.read === undefined ? fail('EINVAL', operation) : target.file.read(this, target.cgroup, operation)
    const css = target.cgroup.ownCss[target.subsystemId]
    if (css === undefined || target.file.read === undefined) return fail(css === undefined ? 'ENOENT' : 'EINVAL', operation)
    try {
      return E.right(target.file.read(css))
    } catch (error) {
      return E.left(isCgtxError(error) ? error : systemError('EIO', operation, { subsystem: css.subsystem.name, reason: String(error) }))
    }
  }

  /** Synchronous write for files that never wait; EAGAIN where the kernel would sleep. */
  writeSync(path: string, value: string): E.Either<CgtxError, void> {
    const reply = this.writeWith(path, value, false)
    return isPromiseLike(reply) ? E.left(systemError('EAGAIN', `write ${path}`, { reason: 'would sleep' })) : reply
  }

  /** {@link VirtualCgroupFs.mkdir}, synchronously (EAGAIN if it would wait). */
  mkdirSync(path: string): E.Either<CgtxError, void> {
    return this.mkdirNow(path, false) as E.Either<CgtxError, void>
  }

  /** {@link VirtualCgroupFs.rmdir}, synchronously (EAGAIN if it would wait). */
  rmdirSync(path: string): E.Either<CgtxError, void> {
    return this.rmdirNow(path, false) as E.Either<CgtxError, void>
  }

  /** {@link VirtualCgroupFs.list}, synchronously. */
  listSync(path: string): E.Either<CgtxError, ReadonlyArray<string>> {
    const resolved = this.resolve(path, 'list')
    if (E.isLeft(resolved)) return resolved
    if (resolved.right.kind !== 'dir') return fail('ENOTDIR', `list ${path}`)
    const { cgroup } = resolved.right
    const names = [
      ...coreFiles.filter((file) => exists(file, cgroup)).map((file) => file.name),
      ...this.subsystemFiles(cgroup).map(({ file }) => file.name),
      ...cgroup.children.keys(),
    ]
    return E.right(names.sort())
  }

  private mkdirNow(path: string, wait: boolean): Reply<void> {
    // A newline in the new directory's name: the parent is looked up first
    // (ENOENT), then cgroup_mkdir refuses the name with EINVAL.
    const slash = typeof path === 'string' ? path.lastIndexOf('/') : -1
    if (slash > 0 && path.slice(slash).includes('\n') && FsPath.is(path.slice(0, slash))) {
      const parent = this.resolve(path.slice(0, slash), 'mkdir')
      if (E.isLeft(parent) && parent.left._tag === 'BadArgument') return parent
      return fail(E.isRight(parent) && parent.right.kind === 'dir' ? 'EINVAL' : 'ENOENT', `mkdir ${JSON.stringify(path)}`)
    }
    const ref = this.refOf(path, 'mkdir')
    if (E.isLeft(ref)) return ref
    const { hierarchy, cgroupPath } = ref.right
    const parent = hierarchy.lookup(cgroupPath.slice(0, cgroupPath.lastIndexOf('/')) || '/')
    const name = cgroupPath.slice(cgroupPath.lastIndexOf('/') + 1)
    // A name taken by a control file is taken.
    if (parent !== undefined && (coreFiles.some((file) => file.name === name && exists(file, parent)) || this.subsystemFiles(parent).some(({ file }) => file.name === name)))
      return fail('EEXIST', `mkdir ${path}`)
    const request = { hierarchy: hierarchy.name, path: cgroupPath }
    const created = wait ? this.host.mkdir(request)() : this.host.mkdirSync(request)
    const inherit = (cgroup: Cgroup): void => {
      if (cgroup.parent?.cloneChildren === true) cgroup.cloneChildren = true
    }
    return isPromiseLike(created)
      ? created.then((result) => E.map(inherit)(result))
      : E.map(inherit)(created)
  }

  private rmdirNow(path: string, wait: boolean): Reply<void> {
    const ref = this.refOf(path, 'rmdir')
    if (E.isLeft(ref)) return ref
    // rmdir of a control file is ENOTDIR, as for any regular file.
    const target = this.resolve(path, 'rmdir')
    if (E.isRight(target) && target.right.kind !== 'dir') return fail('ENOTDIR', `rmdir ${path}`)
    const request = { hierarchy: ref.right.hierarchy.name, path: ref.right.cgroupPath }
    return wait ? this.host.rmdir(request)() : this.host.rmdirSync(request)
  }

  private writeWith(path: string, value: string, wait = true): Reply<void> {
    const decodedValue = decode(t.string, value, 'value')
    if (E.isLeft(decodedValue)) return decodedValue
    const resolved = this.resolve(path, 'write')
    if (E.isLeft(resolved)) return resolved
    const target = resolved.right
    const operation = `write ${path}`
    if (target.kind === 'dir') return fail('EISDIR', operation)
    if (target.kind === 'core') {
      if (target.file.write === undefined) return fail('EINVAL', operation)
      // A zero-length write never reaches the handler: 0 bytes written, nothing changes.
      if (value === '') return E.right(undefined)
      return target.file.write(this, target.cgroup, value, operation, wait)
    }
    const css = target.cgroup.ownCss[target.subsystemId]
    if (css === undefined || target.file.write === undefined) return fail(css === undefined ? 'ENOENT' : 'EINVAL', operation)
    if (value === '') return E.right(undefined)
    const hierarchy = target.cgroup.hierarchy
    try {
      const result = target.file.write(css, value, {
        hierarchy,
        refuse: (errno, reason) => systemError(errno, operation, { subsystem: css.subsystem.name, reason }),
      })
      if (result === undefined || E.isRight(result)) return E.right(undefined)
      return E.left(result.left)
    } catch (error) {
      return E.left(isCgtxError(error) ? error : systemError('EIO', operation, { subsystem: css.subsystem.name, reason: String(error) }))
    }
  }

  /** @internal A PID write to cgroup.procs / tasks / cgroup.threads. */
  attachPid(cgroup: Cgroup, value: string, mode: 'process' | 'thread', operation: string, wait: boolean): Reply<void> {
    const pid = kstrtoint(strstrip(value), 0)
    if (typeof pid === 'string' || pid < 0) return fail('EINVAL', operation)
    if (pid === 0) return fail('ESRCH', operation, 'no writer task in the model')
    if (this.host.task(pid) === undefined) return fail('ESRCH', operation)
    const request = { mode, pid, to: { hierarchy: cgroup.hierarchy.name, path: cgroup.path } }
    const done = wait ? this.host.attach(request)() : this.host.attachSync(request)
    const toVoid = E.map((): void => undefined)
    return isPromiseLike(done) ? done.then(toVoid) : toVoid(done)
  }

  /** @internal cgroup.type := threaded (cgroup_enable_threaded). */
  makeThreaded(cgroup: Cgroup, operation: string): E.Either<CgtxError, void> {
    if (cgroup.threaded) return E.right(undefined)
    const threadedOnly = [...cgroup.subtreeControl].every((id) => this.host.threadedSubsystems.has(id))
    if (cgroup.populated || !threadedOnly) return fail('EOPNOTSUPP', operation)
    const root = cgroup.parent!.domain
    if (!root.isValidDomain || !root.canBeThreadRoot(this.host.threadedSubsystems)) return fail('EOPNOTSUPP', operation)
    cgroup.threaded = true
    cgroup.parent!.nrThreadedChildren++
    return E.right(undefined)
  }

  /**
   * @internal cgroup.kill: every process with a task in the subtree exits
   * (SIGKILL takes the whole thread group). Without waiting, it refuses with
   * EAGAIN up front while a transaction (which may hold a process's
   * thread-group lock) is in flight, so it never kills only some.
   */
  kill(cgroup: Cgroup, operation: string, wait: boolean): Reply<void> {
    const tgids = new Set<number>()
    for (const at of cgroup.subtree()) for (const task of at.tasks()) if (!task.flags.kthread) tgids.add(task.tgid)
    if (!wait) {
      if (this.host.mutex.owner !== undefined) return fail('EAGAIN', operation, 'would block on a process being moved')
      for (const tgid of tgids) this.host.exitSync(tgid, { group: true })
      return E.right(undefined)
    }
    return Promise.all([...tgids].map((tgid) => this.host.exit(tgid, { group: true })())).then(() => E.right(undefined))
  }

  /** @internal Names of subsystem ids, in id order, space-separated. */
  subsystemNames(ids: ReadonlySet<number>): string {
    // cgroup_print_ss_mask: the newline only follows a non-empty list.
    return ids.size === 0 ? '' : `${[...ids].sort((a, b) => a - b).map((id) => this.host.subsystems[id]!.name).join(' ')}\n`
  }

  /** @internal cgroup.stat. */
  stat(cgroup: Cgroup): string {
    const subsystems = cgroup.hierarchy.subsystems
    const live = (id: number): number => [...cgroup.subtree()].filter((at) => at.ownCss[id] !== undefined).length
    return [
      `nr_descendants ${cgroup.nrDescendants}`,
      ...subsystems.map(({ id, subsystem }) => `nr_subsys_${subsystem.name} ${live(id)}`),
      `nr_dying_descendants ${cgroup.nrDyingDescendants}`,
      ...subsystems.map(({ subsystem }) => `nr_dying_subsys_${subsystem.name} 0`),
      '',
    ].join('\n')
  }

  private subsystemFiles(cgroup: Cgroup): ReadonlyArray<{ readonly file: ControlFile<unknown>; readonly subsystemId: number }> {
    return cgroup.hierarchy.subsystems.flatMap(({ id, subsystem }) =>
      cgroup.ownCss[id] === undefined ? [] : (subsystem.files ?? []).filter((file) => exists(file, cgroup)).map((file) => ({ file, subsystemId: id })),
    )
  }

  private refOf(path: string, verb: string): E.Either<CgtxError, { readonly hierarchy: Hierarchy; readonly cgroupPath: string }> {
    const decoded = decode(FsPath, path, 'path')
    if (E.isLeft(decoded)) return decoded
    const [, mount, ...rest] = path.split('/')
    const hierarchy = this.host.hierarchy(mount!)
    if (hierarchy === undefined) return E.left(badArgument('path', path, 'a path under a mounted hierarchy'))
    // The hierarchy's root is its mount point: it exists, and cannot be removed.
    if (rest.length === 0) return fail(verb === 'rmdir' ? 'EBUSY' : 'EEXIST', `${verb} ${path}`)
    return E.right({ hierarchy, cgroupPath: `/${rest.join('/')}` })
  }

  private resolve(path: string, verb: string): E.Either<CgtxError, Resolved> {
    const decoded = decode(FsPath, path, 'path')
    if (E.isLeft(decoded)) return decoded
    const [, mount, ...rest] = path.split('/')
    const hierarchy = this.host.hierarchy(mount!)
    if (hierarchy === undefined) return E.left(badArgument('path', path, 'a path under a mounted hierarchy'))
    let cgroup = hierarchy.root
    for (const [i, name] of rest.entries()) {
      const child = cgroup.children.get(name)
      if (child !== undefined) {
        cgroup = child
        continue
      }
      if (i !== rest.length - 1) return fail('ENOENT', `${verb} ${path}`)
      const core = coreFiles.find((file) => file.name === name && exists(file, cgroup))
      if (core !== undefined) return E.right({ kind: 'core', cgroup, file: core })
      const own = this.subsystemFiles(cgroup).find(({ file }) => file.name === name)
      if (own !== undefined) return E.right({ kind: 'subsystem', cgroup, ...own })
      return fail('ENOENT', `${verb} ${path}`)
    }
    return E.right({ kind: 'dir', hierarchy, cgroup })
  }
}
