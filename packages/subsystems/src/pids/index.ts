/**
 * The pids controller (kernel/cgroup/pids.c): counts tasks (threads)
 * hierarchically and refuses a fork or thread creation with EAGAIN when the
 * forking cgroup or any ancestor is at `pids.max`. Migration is never
 * refused and may leave `pids.current` above `pids.max`: the destination
 * chain is charged in prepareSleep and the source chain uncharged at commit,
 * so a common ancestor is transiently one higher (and `pids.peak` may keep
 * that), as in the kernel. A task's pid is returned at release (reap), to
 * the cgroup the task is in then.
 *
 * Events: on v1 `pids.events` counts fork failures of tasks in this cgroup,
 * whichever ancestor's limit was hit; on v2 it counts, hierarchically, the
 * failures caused by this cgroup's or a descendant's limit, and
 * `pids.events.local` counts those caused by this cgroup's own limit.
 *
 * @module pids
 */
import { PID_MAX_LIMIT, type Css } from '@cgtx/core'
import { limitOrMax } from '../codecs.ts'
import { HierarchicalCounter } from '../counter.ts'
import { defineSubsystem, type DefinedSubsystem } from '../defineSubsystem.ts'

/** Per-cgroup state of the pids controller. */
export interface PidsState {
  /** Tasks charged here or below, with `pids.max` as its limit. */
  readonly counter: HierarchicalCounter
  /** Fork failures of tasks in this cgroup (v1 `pids.events`). */
  forkFailures: number
  /** v2: failures caused by the limit of this cgroup or a descendant (`pids.events`). */
  maxEvents: number
  /** v2: failures caused by this cgroup's own limit (`pids.events.local`). */
  maxEventsLocal: number
}

/** The pids controller type. */
export type PidsSubsystem = DefinedSubsystem<PidsState>

/** Creates a pids controller. */
export const pids = (): PidsSubsystem =>
  defineSubsystem<PidsState>({
    name: 'pids',
    threaded: true,
    // The root is not charged (pids.c stops below it): its children's counters have no parent.
    state: (parent, cgroup) => ({
      counter: new HierarchicalCounter(cgroup.parent === undefined || cgroup.parent.isRoot ? undefined : parent?.counter),
      forkFailures: 0,
      maxEvents: 0,
      maxEventsLocal: 0,
    }),
    files: [
      {
        name: 'pids.max',
        read: (css) => (css.state.counter.limit === Number.POSITIVE_INFINITY ? 'max\n' : `${css.state.counter.limit}\n`),
        write: {
          codec: limitOrMax('pids.max', PID_MAX_LIMIT),
          invalid: 'EINVAL',
          apply: (css, limit) => void (css.state.counter.limit = limit),
        },
      },
      { name: 'pids.current', read: (css) => `${css.state.counter.usage}\n` },
      { name: 'pids.peak', read: (css) => `${css.state.counter.peak}\n` },
      {
        name: 'pids.events',
        read: (css) => `max ${css.cgroup.hierarchy.version === 'v1' ? css.state.forkFailures : css.state.maxEvents}\n`,
      },
      { name: 'pids.events.local', versions: ['v2'], read: (css) => `max ${css.state.maxEventsLocal}\n` },
    ],
    fork: {
      can: (ctx) => {
        const over = ctx.css.state.counter.tryCharge(1)
        if (over === undefined) return undefined
        ctx.css.state.forkFailures++
        if (ctx.css.cgroup.hierarchy.version === 'v2') {
          let at: Css<PidsState> | undefined = ctx.css
          while (at !== undefined && at.state.counter !== over) at = at.parent
          if (at !== undefined) at.state.maxEventsLocal++
          for (; at !== undefined; at = at.parent) at.state.maxEvents++
        }
        return ctx.refuse('EAGAIN', 'fork rejected by pids controller')
      },
      cancel: (ctx) => ctx.css.state.counter.uncharge(1),
    },
    release: (_task, css) => css.state.counter.uncharge(1),
    attach: {
      prepareSleep: (_ctx, moves) => {
        for (const move of moves) move.to.state.counter.charge(1)
      },
      abortSleep: (_ctx, moves) => {
        for (const move of moves) move.to.state.counter.uncharge(1)
      },
      commit: (_ctx, moves) => {
        for (const move of moves) move.from.state.counter.uncharge(1)
      },
    },
  })
