/**
 * io_tokens: a third-party controller for a counted resource, written only
 * against the public API of `@cgtx/subsystems` and `@cgtx/core`.
 *
 * A task takes I/O tokens with `acquire` and gives them back with `release`;
 * the tokens a task holds are charged to its cgroup and every ancestor, and
 * `io_tokens.max` limits each level (an acquire over any ancestor's limit is
 * refused with EAGAIN and counted in `io_tokens.events` where the limit was
 * hit). Tokens move with their task: a migration is never refused (like
 * pids), charging the destination in prepareSleep and uncharging the source
 * at commit; a reaped task's tokens are returned.
 *
 * (This example lives inside the cgtx repository without a package.json of
 * its own, so it imports the packages' sources by relative path; a plugin
 * published on its own imports `@cgtx/subsystems` and `@cgtx/core`.)
 */
// step 1: imports
import { badArgument, systemError, Task, type CgtxError, type Css } from '@cgtx/core'
import { defineSubsystem, extend, HierarchicalCounter, left, limitOrMax, right, type DefinedSubsystem, type Either } from '@cgtx/subsystems'
// end step 1

// step 2: state
/** Per-cgroup state: tokens held here or below, with the limit, and refused acquires. */
export interface IoTokensState {
  readonly counter: HierarchicalCounter
  /** Acquires refused because this cgroup's limit was hit. */
  maxEvents: number
}
// end step 2

/** The controller plus its API. */
export interface IoTokens extends DefinedSubsystem<IoTokensState> {
  /** Takes `tokens` for `task`: EAGAIN over a limit, BadArgument for a bad task or count. */
  acquire(task: unknown, tokens: unknown): Either<CgtxError, void>
  /** Gives back `tokens` the task holds (BadArgument if it holds fewer). */
  giveBack(task: unknown, tokens: unknown): Either<CgtxError, void>
  /** Tokens a task holds. */
  held(task: Task): number
}

/** The largest `io_tokens.max`. */
export const IO_TOKENS_MAX = 1_000_000

const isCount = (value: unknown): value is number => typeof value === 'number' && Number.isSafeInteger(value) && value > 0

/** Creates an io_tokens controller. */
export const ioTokens = (): IoTokens => {
  const holdings = new Map<Task, number>()
  const held = (task: Task): number => holdings.get(task) ?? 0

  // step 3: define
  const controller = defineSubsystem<IoTokensState>({
    name: 'io_tokens',
    state: (parent) => ({ counter: new HierarchicalCounter(parent?.counter), maxEvents: 0 }),
    files: [
      {
        name: 'io_tokens.max',
        read: (css) => (css.state.counter.limit === Number.POSITIVE_INFINITY ? 'max\n' : `${css.state.counter.limit}\n`),
        write: {
          codec: limitOrMax('io_tokens.max', IO_TOKENS_MAX),
          invalid: 'EINVAL',
          apply: (css, limit) => void (css.state.counter.limit = limit),
        },
      },
      { name: 'io_tokens.current', read: (css) => `${css.state.counter.usage}\n` },
      { name: 'io_tokens.events', read: (css) => `max ${css.state.maxEvents}\n` },
    ],
    // A reaped task gives its tokens back to the cgroup it is in.
    release: (task, css) => {
      css.state.counter.uncharge(held(task))
      holdings.delete(task)
    },
    // Tokens taken or given back while the move is in flight land in the
    // source (the task is still there); commit settles the difference.
    attach: {
      prepareSleep: (ctx, moves) => {
        const charged = moves.map((move) => held(move.task))
        moves.forEach((move, i) => move.to.state.counter.charge(charged[i]!))
        ctx.privateState = charged
      },
      abortSleep: (ctx, moves) => {
        const charged = ctx.privateState as ReadonlyArray<number>
        moves.forEach((move, i) => move.to.state.counter.uncharge(charged[i]!))
      },
      commit: (ctx, moves) => {
        const charged = ctx.privateState as ReadonlyArray<number>
        moves.forEach((move, i) => {
          const now = held(move.task)
          move.from.state.counter.uncharge(now)
          move.to.state.counter.charge(now - charged[i]!)
        })
      },
    },
  })
  // end step 3

  // step 4: api
  const acquire = (task: unknown, tokens: unknown): Either<CgtxError, void> => {
    if (!(task instanceof Task) || task.state !== 'running') return left(badArgument('task', task, 'a running task'))
    if (!isCount(tokens)) return left(badArgument('tokens', tokens, 'a positive safe integer'))
    const css = controller.cssOf(task)
    if (css === undefined) return left(badArgument('task', task.tid, 'a task in a hierarchy with io_tokens'))
    const over = css.state.counter.tryCharge(tokens)
    if (over !== undefined) {
      for (let at: Css<IoTokensState> | undefined = css; at !== undefined; at = at.parent) if (at.state.counter === over) at.state.maxEvents++
      return left(systemError('EAGAIN', `acquire ${tokens} io tokens by ${task.tid}`, { subsystem: 'io_tokens', reason: `over the limit of ${over === css.state.counter ? css.cgroup.path : 'an ancestor'}` }))
    }
    holdings.set(task, held(task) + tokens)
    return right(undefined)
  }

  const giveBack = (task: unknown, tokens: unknown): Either<CgtxError, void> => {
    if (!(task instanceof Task)) return left(badArgument('task', task, 'a task'))
    if (!isCount(tokens) || tokens > held(task)) return left(badArgument('tokens', tokens, `at most the ${held(task)} tokens held`))
    const css = controller.cssOf(task)
    if (css === undefined) return left(badArgument('task', task.tid, 'a task in a hierarchy with io_tokens'))
    css.state.counter.uncharge(tokens)
    holdings.set(task, held(task) - tokens)
    return right(undefined)
  }

  return extend(controller, { acquire, giveBack, held })
  // end step 4
}
