/**
 * {@link KernelCgroupFs}: the core's {@link CgroupFs} made against the real
 * kernel. Paths name the mount first, like the model's (`/pids/a/pids.max` is
 * `/sys/fs/cgroup/pids/a/pids.max` here), so one scenario runs on both.
 *
 * Every argument is checked before any syscall: a path that is not absolute,
 * contains `.` or `..`, names no mounted hierarchy, or a value that is not a
 * string is a `BadArgument`. Two guards keep the backend where it may act:
 * `confine` restricts mkdir / rmdir / write to one top-level directory per
 * hierarchy (e.g. `cgtx-test-…`), and the memory hierarchy is refused
 * altogether unless `allowMemory` is set. A kernel refusal is a `SystemError`
 * carrying the kernel's errno.
 *
 * @module cgroupfs
 */
import * as E from 'fp-ts/lib/Either.js'
import type * as TE from 'fp-ts/lib/TaskEither.js'
import { closeSync, constants, mkdirSync, openSync, readdirSync, readFileSync, rmdirSync, writeSync } from 'node:fs'
import * as t from 'io-ts'
import { badArgument, CgroupName, decode, FsPath, type CgroupFs, type CgtxError } from '@cgtx/core'
import { discover, type CgroupMount, type CgroupMounts } from './discovery.ts'
import { fromNodeError } from './internal/errno.ts'
import { hasExited, placementOf, tgidOf, threadsOf, type Placement } from './membership.ts'

/** How a {@link KernelCgroupFs} is confined. */
export const KernelCgroupFsOptions = t.partial(
  {
    /** The one top-level cgroup name (in every hierarchy) under which mkdir / rmdir / write are allowed. */
    confine: CgroupName,
    /** Allow any operation on a hierarchy that has the memory controller (default false). */
    allowMemory: t.boolean,
    /** Mount names the backend may touch (default: every mount except memory). */
    hierarchies: t.array(t.string),
  },
  'KernelCgroupFsOptions',
)
/** A decoded {@link KernelCgroupFsOptions}. */
export type KernelCgroupFsOptions = t.TypeOf<typeof KernelCgroupFsOptions>

/** A checked path: its mount, the components below the mount, and the real file name. */
export interface ResolvedPath {
  readonly mount: CgroupMount
  /** Components below the mount point (empty for the mount's root). */
  readonly components: ReadonlyArray<string>
  /** The cgroup path inside the hierarchy for a directory (`/a/b`), or of the file's directory. */
  readonly real: string
}

type Access = 'read' | 'mkdir' | 'rmdir' | 'write'

const Value = t.string

/** The real kernel's cgroupfs behind the {@link CgroupFs} interface. */
export class KernelCgroupFs implements CgroupFs {
  private constructor(
    /** The mounts this backend resolves paths against. */
    readonly mounts: CgroupMounts,
    /** The decoded options. */
    readonly options: KernelCgroupFsOptions,
  ) {}

  /** Opens the backend on this machine's mounts (or on `mounts`, already discovered). */
  static open(options: unknown = {}, mounts?: CgroupMounts): E.Either<CgtxError, KernelCgroupFs> {
    const decoded = decode(KernelCgroupFsOptions, options, 'options')
    if (E.isLeft(decoded)) return decoded
    const found = mounts === undefined ? discover() : E.right(mounts)
    if (E.isLeft(found)) return found
    for (const [i, name] of (decoded.right.hierarchies ?? []).entries()) {
      if (!found.right.mounts.some((mount) => mount.name === name))
        return E.left(badArgument(`options.hierarchies.${i}`, name, 'a mounted hierarchy'))
    }
    return E.right(new KernelCgroupFs(found.right, decoded.right))
  }

  /** True if this mount holds the memory controller. */
  static isMemory(mount: CgroupMount): boolean {
    return mount.version === 'v1' && mount.controllers.includes('memory')
  }

  mkdir(path: string): TE.TaskEither<CgtxError, void> {
    return () => Promise.resolve(this.mkdirSync(path))
  }

  rmdir(path: string): TE.TaskEither<CgtxError, void> {
    return () => Promise.resolve(this.rmdirSync(path))
  }

  read(path: string): TE.TaskEither<CgtxError, string> {
    return () => Promise.resolve(this.readSync(path))
  }

  write(path: string, value: string): TE.TaskEither<CgtxError, void> {
    return () => Promise.resolve(this.writeSync(path, value))
  }

  list(path: string): TE.TaskEither<CgtxError, ReadonlyArray<string>> {
    return () => Promise.resolve(this.listSync(path))
  }

  /** mkdir(2) of a cgroup directory. */
  mkdirSync(path: string): E.Either<CgtxError, void> {
    return this.syscall(path, 'mkdir', (file) => mkdirSync(file))
  }

  /** rmdir(2) of a cgroup directory. */
  rmdirSync(path: string): E.Either<CgtxError, void> {
    return this.syscall(path, 'rmdir', (file) => rmdirSync(file))
  }

  /** Reads a control file to its end. */
  readSync(path: string): E.Either<CgtxError, string> {
    return this.syscall(path, 'read', (file) => readFileSync(file, 'utf8'))
  }

  /** Writes `value` to a control file in one write(2), without creating or truncating it. */
  writeSync(path: string, value: string): E.Either<CgtxError, void> {
    const decoded = decode(Value, value, 'value')
    if (E.isLeft(decoded)) return decoded
    return this.syscall(path, 'write', (file) => {
      const fd = openSync(file, constants.O_WRONLY)
      try {
        writeSync(fd, Buffer.from(value))
      } finally {
        closeSync(fd)
      }
    })
  }

  /** Lists a cgroup directory: files and child cgroups, sorted. */
  listSync(path: string): E.Either<CgtxError, ReadonlyArray<string>> {
    return this.syscall(path, 'read', (file) => readdirSync(file).sort())
  }

  /** Where thread `tid` of process `pid` is in every discovered hierarchy. */
  placement(pid: number, tid: number = pid): E.Either<CgtxError, Placement> {
    return placementOf(this.mounts, pid, tid)
  }

  /** The thread ids of process `pid`, ascending. */
  threads(pid: number): E.Either<CgtxError, ReadonlyArray<number>> {
    return threadsOf(pid)
  }

  /** True if thread `tid` of process `pid` has exited (zombie). */
  exited(pid: number, tid: number = pid): boolean {
    return hasExited(pid, tid)
  }

  /** The process thread `tid` belongs to. */
  tgid(tid: number): E.Either<CgtxError, number> {
    return tgidOf(tid)
  }

  /** The real file name behind a backend path, after every check of `access`. */
  realPath(path: unknown, access: Access): E.Either<CgtxError, string> {
    const resolved = this.resolve(path, access)
    return E.map(({ mount, components }: ResolvedPath) => [mount.mountPoint, ...components].join('/'))(resolved)
  }

  /** Checks a backend path for `access`: well formed, mounted, allowed, inside the confinement. */
  resolve(path: unknown, access: Access): E.Either<CgtxError, ResolvedPath> {
    const decoded = decode(FsPath, path, 'path')
    if (E.isLeft(decoded)) return decoded
    const [, name, ...components] = decoded.right.split('/')
    if (components.some((component) => component === '.' || component === '..'))
      return E.left(badArgument('path', path, 'a path without . or .. components'))
    const mount = this.mounts.mounts.find((candidate) => candidate.name === name)
    if (mount === undefined)
      return E.left(badArgument('path', path, `a path under a mounted hierarchy (${this.mounts.mounts.map((m) => m.name).join(', ')})`))
    if (KernelCgroupFs.isMemory(mount) && this.options.allowMemory !== true)
      return E.left(badArgument('path', path, 'a path outside the memory hierarchy (allowMemory is not set)'))
    if (this.options.hierarchies !== undefined && !this.options.hierarchies.includes(mount.name))
      return E.left(badArgument('path', path, `a path under an allowed hierarchy (${this.options.hierarchies.join(', ')})`))
    const confine = this.options.confine
    if (access !== 'read' && confine !== undefined) {
      // mkdir / rmdir may create or remove the confinement directory itself; writes go to files below it.
      const minimum = access === 'write' ? 2 : 1
      if (components[0] !== confine || components.length < minimum)
        return E.left(badArgument('path', path, `a path inside /${mount.name}/${confine}`))
    }
    const directory = access === 'mkdir' || access === 'rmdir' ? components : components.slice(0, -1)
    return E.right({ mount, components, real: `/${directory.join('/')}` })
  }

  private syscall<A>(path: string, access: Access, op: (file: string) => A): E.Either<CgtxError, A> {
    const file = this.realPath(path, access)
    if (E.isLeft(file)) return file
    try {
      return E.right(op(file.right))
    } catch (error) {
      return E.left(fromNodeError(error, `${access === 'read' ? 'read' : access} ${path}`))
    }
  }
}
