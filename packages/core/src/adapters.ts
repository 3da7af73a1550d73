/**
 * Adapters from two other callback protocols to {@link Subsystem}:
 *
 * - {@link fromKernelCallbacks}: the modern kernel's `can_attach` /
 *   `cancel_attach` / `attach` / `post_attach`, where prepare may sleep,
 *   there is no spin phase, and cancel runs for controllers that prepared.
 *   Build the host with `abortOrder: 'kernel'` to get the kernel's ascending
 *   cancel order as well.
 * - {@link fromSinglePhase}: the single-phase protocol proposed in review of
 *   the RFC (Balbir Singh): `prepare` (may fail), `undo` when another
 *   subsystem failed, `attached` once the tasks moved.
 *
 * @module adapters
 */
import type { Cgroup } from './cgroup.ts'
import type { Css } from './cssSet.ts'
import type { MaybePromise } from './internal/settle.ts'
import type { AttachContext, CallbackResult, ControlFile, ForkContext, Subsystem } from './subsystem.ts'
import type { Task } from './task.ts'

/** The kernel's `cgroup_taskset`: each migrating task with its destination css. */
export interface Taskset<S> {
  /** `cgroup_taskset_for_each`: every task and the css it moves to. */
  forEach(visit: (task: Task, css: Css<S>) => void): void
  /** `cgroup_taskset_first`. */
  first(): { readonly task: Task; readonly css: Css<S> } | undefined
  /** The transaction context underneath, for locks and refusals. */
  readonly context: AttachContext<S>
}

const tasksetOf = <S>(ctx: AttachContext<S>): Taskset<S> => ({
  forEach: (visit) => {
    for (const entry of ctx.tasks) visit(entry.task, ctx.to(entry))
  },
  first: () => {
    const entry = ctx.tasks[0]
    return entry === undefined ? undefined : { task: entry.task, css: ctx.to(entry) }
  },
  context: ctx,
})

/** Shared, non-attach parts of a controller definition. */
export interface SubsystemBase<S> {
  readonly name: string
  readonly threaded?: boolean
  createState(parent: S | undefined, cgroup: Cgroup): S
  offline?(css: Css<S>): void
  readonly files?: ReadonlyArray<ControlFile<S>>
  canFork?(ctx: ForkContext<S>): CallbackResult
  cancelFork?(ctx: ForkContext<S>): void
  fork?(ctx: ForkContext<S>): void
  exit?(task: Task, css: Css<S>): void
  release?(task: Task, css: Css<S>): void
}

/** A controller written against the kernel's callback names. */
export interface KernelCallbacks<S> extends SubsystemBase<S> {
  canAttach?(tset: Taskset<S>): MaybePromise<CallbackResult>
  cancelAttach?(tset: Taskset<S>): MaybePromise<void>
  attach?(tset: Taskset<S>): MaybePromise<void>
  postAttach?(tset: Taskset<S>): MaybePromise<void>
}

const baseOf = <S>(base: SubsystemBase<S>): Subsystem<S> => {
  const { name, threaded, createState, offline, files, canFork, cancelFork, fork, exit, release } = base
  return {
    name,
    createState,
    ...(threaded === undefined ? {} : { threaded }),
    ...(offline === undefined ? {} : { offline }),
    ...(files === undefined ? {} : { files }),
    ...(canFork === undefined ? {} : { canFork }),
    ...(cancelFork === undefined ? {} : { cancelFork }),
    ...(fork === undefined ? {} : { fork }),
    ...(exit === undefined ? {} : { exit }),
    ...(release === undefined ? {} : { release }),
  }
}

/** Adapts kernel-style callbacks: can_attach → prepareSleep, cancel_attach → abortSleep. */
export const fromKernelCallbacks = <S>(callbacks: KernelCallbacks<S>): Subsystem<S> => {
  const { canAttach, cancelAttach, attach, postAttach } = callbacks
  return {
    ...baseOf(callbacks),
    ...(canAttach === undefined ? {} : { prepareSleep: (ctx: AttachContext<S>) => canAttach(tasksetOf(ctx)) }),
    ...(cancelAttach === undefined ? {} : { abortSleep: (ctx: AttachContext<S>) => cancelAttach(tasksetOf(ctx)) }),
    ...(attach === undefined ? {} : { attach: (ctx: AttachContext<S>) => attach(tasksetOf(ctx)) }),
    ...(postAttach === undefined ? {} : { postAttach: (ctx: AttachContext<S>) => postAttach(tasksetOf(ctx)) }),
  }
}

/** A controller written against the single-phase prepare / undo / attached protocol. */
export interface SinglePhaseCallbacks<S> extends SubsystemBase<S> {
  prepare?(ctx: AttachContext<S>): MaybePromise<CallbackResult>
  undo?(ctx: AttachContext<S>): MaybePromise<void>
  attached?(ctx: AttachContext<S>): MaybePromise<void>
}

/** Adapts prepare / undo / attached: prepare → prepareSleep, undo → abortSleep, attached → attach. */
export const fromSinglePhase = <S>(callbacks: SinglePhaseCallbacks<S>): Subsystem<S> => {
  const { prepare, undo, attached } = callbacks
  return {
    ...baseOf(callbacks),
    ...(prepare === undefined ? {} : { prepareSleep: prepare }),
    ...(undo === undefined ? {} : { abortSleep: undo }),
    ...(attached === undefined ? {} : { attach: attached }),
  }
}
