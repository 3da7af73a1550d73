/**
 * The interface a controller (subsystem) implements: per-cgroup state,
 * control files, fork / exit hooks and the attach transaction's callbacks.
 * The core calls these and knows no controller by name; the built-in
 * controllers and third-party plugins implement exactly this.
 *
 * Attach callbacks, in the order the transaction runs them (see DESIGN.md):
 *
 * | callback     | may return a promise | may fail |
 * |--------------|----------------------|----------|
 * | prepareSleep | yes                  | yes      |
 * | prepareSpin  | no                   | yes      |
 * | abortSpin    | no                   | no       |
 * | abortSleep   | yes                  | no       |
 * | commit       | no                   | no       |
 * | attach       | yes                  | no       |
 * | postAttach   | yes                  | no       |
 *
 * A callback fails by returning `E.left(ctx.refuse(errno, reason))`; a throw,
 * a rejection, a promise where none is allowed and a broken lock rule are
 * plugin faults, which fail the transaction the same way.
 *
 * @module subsystem
 */
import type * as E from 'fp-ts/lib/Either.js'
import type { AttachMode } from './codecs.ts'
import type { Errno, SystemError } from './errors.ts'
import type { SleepLock, SpinLock } from './locks.ts'
import type { MaybePromise } from './internal/settle.ts'
import type { Cgroup, Hierarchy } from './cgroup.ts'
import type { Css, CssSet } from './cssSet.ts'
import type { Mm, Task } from './task.ts'

/** What a fallible callback returns: nothing (success) or an `Either` whose left is the refusal. */
export type CallbackResult = void | E.Either<SystemError, unknown>

/** The phases a subsystem is called in. */
export type AttachPhase = 'prepareSleep' | 'prepareSpin' | 'abortSpin' | 'abortSleep' | 'commit' | 'attach' | 'postAttach'

/** One task of a transaction with the css_set it leaves and the one it joins. */
export interface MigrationEntry {
  readonly task: Task
  readonly from: CssSet
  readonly to: CssSet
}

/**
 * The transaction as one subsystem sees it during its callbacks. Like the
 * kernel's on-stack taskset it is valid only while the transaction runs: a
 * host hands each subsystem the same context object in every transaction,
 * pointed at the running one, so keep `privateState` (reset per transaction)
 * rather than the context, and tell transactions apart by `transaction`.
 */
export interface AttachContext<S = unknown> {
  /** Transaction number, as in the trace. */
  readonly transaction: number
  readonly mode: AttachMode
  readonly phase: AttachPhase
  readonly subsystem: Subsystem<S>
  /** Every task being moved (in every hierarchy the transaction touches). */
  readonly tasks: ReadonlyArray<MigrationEntry>
  /** The destination cgroups, one per hierarchy. */
  readonly destinations: ReadonlyArray<Cgroup>
  /** Set in postAttach: whether the transaction committed. */
  readonly outcome: 'committed' | 'aborted' | undefined
  /** This subsystem's css on the source side of `entry`. */
  from(entry: MigrationEntry): Css<S>
  /** This subsystem's css on the destination side of `entry`. */
  to(entry: MigrationEntry): Css<S>
  /** Per-transaction private state of this subsystem (the RFC's `subsys_state`). */
  get privateState(): unknown
  set privateState(value: unknown)
  /** Builds the refusal a callback returns with `E.left(...)`. */
  refuse(errno: Errno, reason: string): SystemError
  /**
   * Takes a sleeping lock for this transaction; it is held until this
   * subsystem's commit or abort has run and then released by the core.
   */
  lock(lock: SleepLock): MaybePromise<void>
  /** Takes a spin lock (prepareSpin / commit / abortSpin); released like `lock`. */
  lockSpin(lock: SpinLock): void
  /**
   * Takes `mm`'s mmap lock for reading, once per transaction however many
   * subsystems ask (the RFC's recursion count); the only lock subsystems may share.
   */
  lockMmap(mm: Mm): MaybePromise<void>
  /** Releases a lock early (otherwise the core releases it). */
  unlock(lock: SleepLock | SpinLock): void
}

/** What fork hooks see. */
export interface ForkContext<S = unknown> {
  readonly child: Task
  readonly parent: Task
  /** The css the child is charged to (its parent's, at fork time). */
  readonly css: Css<S>
  refuse(errno: Errno, reason: string): SystemError
}

/** What a control file handler sees besides the css. */
export interface FileContext {
  readonly hierarchy: Hierarchy
  refuse(errno: Errno, reason: string): SystemError
}

/** One control file a subsystem adds to each cgroup of its hierarchy. */
export interface ControlFile<S = unknown> {
  /** Full file name, e.g. `pids.max`. */
  readonly name: string
  /** Where the file exists: only the root, only non-root cgroups (the default), or all. */
  readonly on?: 'root' | 'nonroot' | 'all'
  /** Hierarchy versions the file exists on (default both). */
  readonly versions?: ReadonlyArray<'v1' | 'v2'>
  /** Renders the file; absent means write-only. */
  readonly read?: (css: Css<S>) => string
  /** Parses and applies a write; absent means read-only. */
  readonly write?: (css: Css<S>, value: string, ctx: FileContext) => CallbackResult
}

/**
 * A controller as the core sees it. All members but `name` and
 * `createState` are optional. The host reads the attach callbacks once, when
 * it is created; replacing one on the object afterwards has no effect.
 */
export interface Subsystem<S = unknown> {
  /** Unique name, as in `/proc/cgroups` (`pids`, `cpuset`, …). */
  readonly name: string
  /** May be enabled inside v2 threaded subtrees (cpu, cpuset, pids, perf_event). */
  readonly threaded?: boolean
  /** Per-cgroup state for a new css; `parent` is the parent css's state (undefined at a root). */
  createState(parent: S | undefined, cgroup: Cgroup): S
  /** Called when a css goes away (rmdir, or the controller disabled in v2). */
  offline?(css: Css<S>): void
  /**
   * The CPUs tasks of this css may run on (cpuset's effective CPUs);
   * sched_setaffinity keeps a task within every subsystem's answer.
   */
  cpusAllowed?(css: Css<S>): ReadonlyArray<number>
  readonly files?: ReadonlyArray<ControlFile<S>>

  /** May refuse a fork (e.g. pids over its limit); runs before the child exists anywhere. */
  canFork?(ctx: ForkContext<S>): CallbackResult
  /** Undoes canFork when a later subsystem refused the fork. */
  cancelFork?(ctx: ForkContext<S>): void
  /** The child now exists in its css_set. */
  fork?(ctx: ForkContext<S>): void
  /** The task started exiting (it is a zombie from now on). */
  exit?(task: Task, css: Css<S>): void
  /** The task was reaped. */
  release?(task: Task, css: Css<S>): void

  prepareSleep?(ctx: AttachContext<S>): MaybePromise<CallbackResult>
  prepareSpin?(ctx: AttachContext<S>): CallbackResult
  abortSpin?(ctx: AttachContext<S>): void
  abortSleep?(ctx: AttachContext<S>): MaybePromise<void>
  commit?(ctx: AttachContext<S>): void
  attach?(ctx: AttachContext<S>): MaybePromise<void>
  postAttach?(ctx: AttachContext<S>): MaybePromise<void>
}
