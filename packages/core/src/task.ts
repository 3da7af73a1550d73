/**
 * Tasks (threads), the thread groups (processes) they belong to and the
 * address spaces (`Mm`) those share. A task points at one interned css_set;
 * migration swaps that pointer. The thread group's {@link RwSemaphore} is the
 * model's `cgroup_threadgroup_rwsem`: fork, exec and exit take it for reading,
 * a migration of the process takes it for writing.
 *
 * @module task
 */
import type { SchedPolicy } from './codecs.ts'
import type { CssSet } from './cssSet.ts'
import { RwSemaphore } from './locks.ts'
import type { TaskList } from './taskList.ts'

/** An address space, shared by the threads of a process; its mmap lock is the one lock subsystems may share. */
export class Mm {
  readonly mmapLock: RwSemaphore
  constructor(readonly id: number) {
    this.mmapLock = new RwSemaphore('mmap_lock')
  }
}

/** A process: its threads, its address space and its thread-group lock. */
export class ThreadGroup {
  /** Threads not yet reaped (live, exiting and zombie). */
  readonly threads = new Set<Task>()
  readonly lock = new RwSemaphore('cgroup_threadgroup_rwsem')
  /** Replaced on exec. */
  mm: Mm
  leader!: Task

  constructor(
    readonly tgid: number,
    mm: Mm,
    readonly parent: ThreadGroup | undefined,
  ) {
    this.mm = mm
  }

  /** Threads that are running (not exiting, not zombies). */
  *liveThreads(): Generator<Task> {
    for (const thread of this.threads) if (thread.state === 'running') yield thread
  }
}

/**
 * Life of a task: `running`; `exiting` once exit has begun (PF_EXITING: still
 * in its css_set but skipped by migrations); `zombie` after exit (counted
 * nowhere, still holds its pid); `reaped`.
 */
export type TaskState = 'running' | 'exiting' | 'zombie' | 'reaped'

/** Kernel-thread properties that the attach path checks. */
export interface TaskFlags {
  /** A kernel thread. */
  readonly kthread: boolean
  /** PF_NO_SETAFFINITY: per-CPU kthreads; migrating them is refused with EINVAL. */
  readonly noSetAffinity: boolean
}

/** One thread. */
export class Task {
  state: TaskState = 'running'
  /** The css_set this task is in; the only thing a migration changes. */
  cssSet: CssSet
  /** Scheduling policy (an RT task may be refused by cpu). */
  policy: SchedPolicy = 'normal'
  /** CPUs the task may run on (`undefined` = all); cpuset rewrites it on attach. */
  affinity: ReadonlyArray<number> | undefined = undefined
  /** The mask last asked for with sched_setaffinity, kept across cpuset moves. */
  requestedAffinity: ReadonlyArray<number> | undefined = undefined
  /** Frozen by a freezer. */
  frozen = false
  /** @internal The css_set task list this task is linked into, and its neighbours there (see {@link TaskList}). */
  cgList: TaskList | undefined = undefined
  /** @internal */
  cgPrev: Task | undefined = undefined
  /** @internal */
  cgNext: Task | undefined = undefined

  constructor(
    /** Thread id (the pid for a group leader). */
    public tid: number,
    readonly group: ThreadGroup,
    cssSet: CssSet,
    readonly flags: TaskFlags,
    public comm: string,
  ) {
    this.cssSet = cssSet
  }

  /** The process id. */
  get tgid(): number {
    return this.group.tgid
  }

  get isLeader(): boolean {
    return this.group.leader === this
  }
}
