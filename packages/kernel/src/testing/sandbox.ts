/**
 * A sandbox on the real kernel for tests: a `cgtx-test-<random>` directory in
 * each hierarchy it uses (pids, cpuset, cpu, cpuacct, freezer, unified by
 * default; never memory), a backend confined to it, processes spawned and
 * tracked by PID, and a cleanup that thaws, moves them back to the sandbox
 * root, kills them by PID and removes every directory bottom-up. The cleanup
 * also runs from a process `exit` handler, so a crashed test leaves nothing.
 *
 * @module testing/sandbox
 */
import * as E from 'fp-ts/lib/Either.js'
import { randomBytes } from 'node:crypto'
import { readdirSync, readFileSync, rmdirSync, statSync, writeFileSync } from 'node:fs'
import { systemError, type CgtxError } from '@cgtx/core'
import { KernelCgroupFs } from '../cgroupfs.ts'
import { discover } from '../discovery.ts'
import { rmdirRetrying } from '../retry.ts'
import { Puppet } from './puppet.ts'

/** The hierarchies a sandbox uses by default (when mounted). */
export const sandboxHierarchies: ReadonlyArray<string> = ['pids', 'cpuset', 'cpu', 'cpuacct', 'freezer', 'unified']

/** What {@link Sandbox.cleanup} could not undo; empty when everything is gone. */
export interface CleanupReport {
  readonly leftovers: ReadonlyArray<string>
}

const live = new Set<Sandbox>()

// Field 22 of /proc/PID/stat: when the process started, in clock ticks since boot.
const startTimeOf = (pid: number): string | undefined => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]
  } catch {
    return undefined
  }
}
let exitHandler = false

/** A prefix directory per hierarchy on the real kernel, and the processes spawned into it. */
export class Sandbox {
  private readonly puppets = new Set<Puppet>()
  private readonly tracked = new Map<number, string>()
  private cleaned = false

  private constructor(
    /** The backend, confined to {@link Sandbox.prefix}. */
    readonly fs: KernelCgroupFs,
    /** `cgtx-test-<random>`. */
    readonly prefix: string,
    /** The mount names in use. */
    readonly hierarchies: ReadonlyArray<string>,
  ) {}

  /**
   * Creates the prefix in every hierarchy (copying the cpuset parent's cpus
   * and mems so tasks can be attached). Fails with EACCES, loudly, where
   * cgroupfs is not writable.
   */
  static async create(options: { readonly hierarchies?: ReadonlyArray<string> } = {}): Promise<E.Either<CgtxError, Sandbox>> {
    const mounts = discover()
    if (E.isLeft(mounts)) return mounts
    const wanted = options.hierarchies ?? sandboxHierarchies
    const hierarchies = wanted.filter((name) => mounts.right.mounts.some((mount) => mount.name === name && !KernelCgroupFs.isMemory(mount)))
    if (process.getuid?.() !== 0)
      return E.left(systemError('EACCES', 'create sandbox', { reason: `cgroupfs is not writable: running as uid ${process.getuid?.()}, not root` }))
    const prefix = `cgtx-test-${randomBytes(4).toString('hex')}`
    const fs = KernelCgroupFs.open({ confine: prefix }, mounts.right)
    if (E.isLeft(fs)) return fs
    const sandbox = new Sandbox(fs.right, prefix, hierarchies)
    live.add(sandbox)
    if (!exitHandler) {
      exitHandler = true
      process.once('exit', () => {
        for (const left of live) left.cleanupSync()
      })
    }
    for (const hierarchy of hierarchies) {
      const made = fs.right.mkdirSync(`/${hierarchy}/${prefix}`)
      if (E.isLeft(made)) {
        await sandbox.cleanup()
        return E.left(made.left._tag === 'SystemError' ? systemError(made.left.errno, made.left.operation, { reason: 'cgroupfs is not writable' }) : made.left)
      }
      if (hierarchy === 'cpuset') {
        for (const file of ['cpuset.cpus', 'cpuset.mems']) {
          const parent = fs.right.readSync(`/cpuset/${file}`)
          const copied = E.isLeft(parent) ? parent : fs.right.writeSync(`/cpuset/${prefix}/${file}`, parent.right)
          if (E.isLeft(copied)) {
            await sandbox.cleanup()
            return copied
          }
        }
      }
    }
    return E.right(sandbox)
  }

  /** The backend path of `sub` (`/`, `/a`, `/a/cgroup.procs`) inside the prefix of `hierarchy`. */
  path(hierarchy: string, sub = '/'): string {
    return `/${hierarchy}/${this.prefix}${sub === '/' ? '' : sub}`
  }

  /** Starts a puppet process and moves it into the sandbox root of every hierarchy. */
  async spawn(): Promise<E.Either<CgtxError, Puppet>> {
    const puppet = await Puppet.start()
    this.puppets.add(puppet)
    for (const hierarchy of this.hierarchies) {
      const moved = this.fs.writeSync(this.path(hierarchy, '/cgroup.procs'), `${puppet.pid}`)
      if (E.isLeft(moved)) return moved
    }
    return E.right(puppet)
  }

  /**
   * Tracks a process the sandbox did not start itself (a puppet's child),
   * so cleanup can kill it should it outlive its parent. It is remembered
   * with its start time: a pid whose process has gone and been reused by
   * someone else is never killed.
   */
  track(pid: number): void {
    const started = startTimeOf(pid)
    if (started !== undefined) this.tracked.set(pid, started)
  }

  /** Thaws, moves every tracked process back to the root of the sandbox, kills them by PID and removes every directory bottom-up. */
  async cleanup(): Promise<CleanupReport> {
    if (this.cleaned) return { leftovers: [] }
    this.thaw()
    for (const puppet of this.puppets) {
      if (!puppet.running) continue
      for (const hierarchy of this.hierarchies) this.fs.writeSync(this.path(hierarchy, '/cgroup.procs'), `${puppet.pid}`)
    }
    await Promise.all([...this.puppets].map(async (puppet) => {
      if (!(await puppet.exit(2000))) puppet.kill()
      await puppet.exited
    }))
    this.killTracked()
    const leftovers: Array<string> = []
    for (const hierarchy of this.hierarchies) {
      for (const dir of this.directories(hierarchy)) {
        const removed = await rmdirRetrying(this.fs, dir, { attempts: 8, delayMs: 5, backoff: 2 })
        if (E.isLeft(removed.result)) leftovers.push(`${dir}: ${removed.result.left.message}`)
      }
    }
    this.cleaned = true
    live.delete(this)
    return { leftovers }
  }

  /** The synchronous last resort run at process exit: thaw, kill by PID, remove directories. */
  cleanupSync(): void {
    if (this.cleaned) return
    this.thaw()
    for (const puppet of this.puppets) puppet.kill()
    this.killTracked()
    for (const hierarchy of this.hierarchies) {
      for (const dir of this.directories(hierarchy)) {
        const real = this.fs.realPath(dir, 'rmdir')
        if (E.isLeft(real)) continue
        // Killed tasks need a moment to leave; zombies do not block rmdir.
        const deadline = Date.now() + 1000
        for (;;) {
          try {
            rmdirSync(real.right)
            break
          } catch {
            if (Date.now() > deadline) break
          }
        }
      }
    }
    this.cleaned = true
    live.delete(this)
  }

  // Orphans of killed puppets: SIGKILL, but only the very process that was tracked.
  private killTracked(): void {
    for (const [pid, started] of this.tracked) {
      if (startTimeOf(pid) !== started) continue
      try {
        process.kill(pid, 'SIGKILL')
      } catch {
        // Already gone.
      }
    }
    this.tracked.clear()
  }

  // Every directory of the prefix in `hierarchy`, children before parents.
  private directories(hierarchy: string): ReadonlyArray<string> {
    const out: Array<string> = []
    const walk = (path: string): void => {
      const real = this.fs.realPath(path, 'rmdir')
      if (E.isLeft(real)) return
      let names: ReadonlyArray<string>
      try {
        names = readdirSync(real.right)
      } catch {
        return
      }
      for (const name of names) {
        try {
          if (statSync(`${real.right}/${name}`).isDirectory()) walk(`${path}/${name}`)
        } catch {
          // Removed meanwhile.
        }
      }
      out.push(path)
    }
    walk(this.path(hierarchy))
    return out
  }

  // Frozen tasks cannot die: thaw every freezer cgroup (v1) and unfreeze v2 ones first.
  private thaw(): void {
    for (const hierarchy of this.hierarchies) {
      for (const dir of this.directories(hierarchy)) {
        const file = hierarchy === 'freezer' ? `${dir}/freezer.state` : `${dir}/cgroup.freeze`
        const value = hierarchy === 'freezer' ? 'THAWED' : '0'
        if (hierarchy !== 'freezer' && hierarchy !== 'unified') continue
        const real = this.fs.realPath(file, 'write')
        if (E.isLeft(real)) continue
        try {
          writeFileSync(real.right, value, { flag: 'r+' })
        } catch {
          // Not frozen, or no such file in this kernel.
        }
      }
    }
  }
}

/**
 * For test suites: a {@link Sandbox}, or an Error that says loudly why the
 * real-kernel suite cannot run (not root, cgroupfs read-only, no mounts) —
 * thrown so the suite fails instead of passing silently.
 */
export const requireSandbox = async (options: { readonly hierarchies?: ReadonlyArray<string> } = {}): Promise<Sandbox> => {
  const created = await Sandbox.create(options)
  if (E.isRight(created)) return created.right
  throw new Error(`REAL-KERNEL SUITE CANNOT RUN: ${created.left.message}. These tests need root and a writable /sys/fs/cgroup.`)
}
