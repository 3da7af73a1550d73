/**
 * `defineSubsystem`: the typed way to write a controller. A definition names
 * the per-cgroup state, the control files (each write decoded by an io-ts
 * codec into a value, refused with the kernel's errno when malformed, the old
 * value kept), the fork / exit hooks and the attach callbacks; the result is
 * a core {@link Subsystem} plus what the kit and the tooling need to know
 * about it (its file specs and codecs). Every built-in controller is written
 * with this and nothing else.
 *
 * Attach callbacks get the core's context and, as a second argument, the
 * moves that concern this controller: entries whose css for this controller
 * changes (a transaction over several hierarchies also carries tasks whose
 * css here stays the same; those are left out).
 *
 * @module defineSubsystem
 */
import * as E from 'fp-ts/lib/Either.js'
import * as t from 'io-ts'
import {
  errnos,
  type AttachContext,
  type Cgroup,
  type ControlFile,
  type Css,
  type Errno,
  type FileContext,
  type ForkContext,
  type MaybePromise,
  type Subsystem,
  type SystemError,
  type Task,
} from '@cgtx/core'

/** What a fallible hook returns: nothing (success), a refusal, or an `Either` whose left is the refusal. */
export type HookResult = void | undefined | SystemError | E.Either<SystemError, unknown>

/** One task whose css for this controller changes in a transaction. */
export interface Move<S> {
  readonly task: Task
  readonly from: Css<S>
  readonly to: Css<S>
}

/** An attach callback: the core's context and this controller's moves. */
export type AttachHook<S, R> = (ctx: AttachContext<S>, moves: ReadonlyArray<Move<S>>) => R

/** The attach callbacks of a definition; see the phase table in `@cgtx/core`'s subsystem module. */
export interface AttachHooks<S> {
  /** May sleep and may refuse; everything it did must be undone by abortSleep or finished by commit. */
  readonly prepareSleep?: AttachHook<S, MaybePromise<HookResult>>
  /** Synchronous, spin locks only; may refuse. */
  readonly prepareSpin?: AttachHook<S, HookResult>
  /** Undoes prepareSpin (synchronous). */
  readonly abortSpin?: AttachHook<S, void>
  /** Undoes prepareSleep. */
  readonly abortSleep?: AttachHook<S, MaybePromise<void>>
  /** Runs right after the css_set switch, synchronously; cannot fail. */
  readonly commit?: AttachHook<S, void>
  /** Post-commit work that may sleep; cannot fail. */
  readonly attach?: AttachHook<S, MaybePromise<void>>
  /** After the task locks dropped, committed or not (`ctx.outcome`). */
  readonly postAttach?: AttachHook<S, MaybePromise<void>>
}

/** Fork hooks of a definition. */
export interface ForkHooks<S> {
  /** May refuse the fork (EAGAIN for a limit, like pids). */
  readonly can?: (ctx: ForkContext<S>) => HookResult
  /** Undoes `can` when a later controller refused the fork. */
  readonly cancel?: (ctx: ForkContext<S>) => void
  /** The child exists now, in `ctx.css`'s cgroup. */
  readonly done?: (ctx: ForkContext<S>) => void
}

/**
 * How a control file is written: a codec from the raw write string to a
 * value, the errno for a string the codec refuses, an optional check that may
 * refuse a well-formed value (EBUSY, ENOSPC, …) before anything changes, and
 * `apply`, which changes the state and cannot fail.
 */
export interface WriteSpec<S, A> {
  /** Decodes the raw string written (newline included, as `write(2)` passes it). */
  readonly codec: t.Decoder<string, A>
  /**
   * The errno for a value the codec refuses. A codec may name another errno
   * for a particular failure with {@link failWith} (e.g. ERANGE for overflow).
   */
  readonly invalid: Errno
  /** Refuses a decoded value that the current state does not allow; nothing may change here. */
  readonly check?: (css: Css<S>, value: A, ctx: FileContext) => HookResult
  /** Applies an accepted value. */
  readonly apply: (css: Css<S>, value: A, ctx: FileContext) => void
}

/** One control file of a definition. */
export interface FileSpec<S, A = unknown> {
  /** Full file name, e.g. `pids.max`. */
  readonly name: string
  /** Root only, non-root only (default) or everywhere. */
  readonly on?: 'root' | 'nonroot' | 'all'
  /** Hierarchy versions the file exists on (default both). */
  readonly versions?: ReadonlyArray<'v1' | 'v2'>
  /** Renders the file (absent: write-only). */
  readonly read?: (css: Css<S>) => string
  /** Parses and applies writes (absent: read-only). */
  readonly write?: WriteSpec<S, A>
}

/** Everything {@link defineSubsystem} needs. */
export interface SubsystemDefinition<S> {
  /** Unique name (`pids`, `io_tokens`, …). */
  readonly name: string
  /** May be enabled in v2 threaded subtrees. */
  readonly threaded?: boolean
  /** State of a new css, from the parent css's state (undefined at a root). */
  readonly state: (parent: S | undefined, cgroup: Cgroup) => S
  /** The css goes away (rmdir, or disabled in v2). */
  readonly offline?: (css: Css<S>) => void
  /** The CPUs tasks of a css may run on; sched_setaffinity stays within it (cpuset). */
  readonly cpusAllowed?: (css: Css<S>) => ReadonlyArray<number>
  readonly files?: ReadonlyArray<FileSpec<S, any>>
  readonly fork?: ForkHooks<S>
  /** The task began exiting (it is a zombie from now on). */
  readonly exit?: (task: Task, css: Css<S>) => void
  /** The task was reaped: resources held until then are returned here. */
  readonly release?: (task: Task, css: Css<S>) => void
  readonly attach?: AttachHooks<S>
}

/** A controller built by {@link defineSubsystem}: a core subsystem plus its definition. */
export interface DefinedSubsystem<S> extends Subsystem<S> {
  /** The definition it was built from (file specs and codecs for tooling and the kit). */
  readonly definition: SubsystemDefinition<S>
  /** This controller's css in a task's css_set (undefined if it is bound to no hierarchy). */
  cssOf(task: Task): Css<S> | undefined
}

/** A decoding failure that carries an errno other than the file's default. */
export const failWith = <A>(errno: Errno, input: unknown, context: t.Context): t.Validation<A> =>
  t.failure(input, context, errno)

const isErrno = (value: unknown): value is Errno => typeof value === 'string' && (errnos as ReadonlyArray<string>).includes(value)

/** The errno a codec's failure asks for, or `fallback`. */
export const errnoOfValidation = (errors: t.Errors, fallback: Errno): Errno => {
  for (const error of errors) if (isErrno(error.message)) return error.message
  return fallback
}

// A hook's result in the core's shape: undefined, or an Either.
const normalize = (result: HookResult): void | E.Either<SystemError, unknown> => {
  if (result === undefined) return undefined
  if ('_tag' in result && result._tag === 'SystemError') return E.left(result)
  return result as E.Either<SystemError, unknown>
}

const normalizeMaybe = (result: MaybePromise<HookResult>): MaybePromise<void | E.Either<SystemError, unknown>> =>
  result !== undefined && typeof (result as PromiseLike<unknown>).then === 'function'
    ? (result as Promise<HookResult>).then(normalize)
    : normalize(result as HookResult)

const noMoves: ReadonlyArray<never> = Object.freeze([])

/** The moves of `ctx` that concern its subsystem: entries whose css for it changes. */
export const movesOf = <S>(ctx: AttachContext<S>): ReadonlyArray<Move<S>> => {
  const tasks = ctx.tasks
  // One task (the common move): an array of its exact size, not a push-grown one.
  if (tasks.length === 1) {
    const entry = tasks[0]!
    const from = ctx.from(entry)
    const to = ctx.to(entry)
    return from === to ? noMoves : [{ task: entry.task, from, to }]
  }
  const moves: Array<Move<S>> = []
  for (const entry of ctx.tasks) {
    const from = ctx.from(entry)
    const to = ctx.to(entry)
    if (from !== to) moves.push({ task: entry.task, from, to })
  }
  return moves
}

// One subsystem's moves, computed once per transaction: its callbacks in one
// transaction all get the same context, showing the same transaction number,
// so the last pair seen is remembered; anything else (the next transaction,
// another host) recomputes.
const movesCache = () => {
  let lastContext: AttachContext<unknown> | undefined
  let lastTransaction = -1
  let lastMoves: ReadonlyArray<Move<unknown>> = []
  return <S>(ctx: AttachContext<S>): ReadonlyArray<Move<S>> => {
    if (ctx !== lastContext || ctx.transaction !== lastTransaction) {
      lastMoves = movesOf(ctx) as ReadonlyArray<Move<unknown>>
      lastContext = ctx as AttachContext<unknown>
      lastTransaction = ctx.transaction
    }
    return lastMoves as ReadonlyArray<Move<S>>
  }
}

// A zero-length write never reaches a handler (the kernel returns 0 and
// changes nothing); a file with no write handler refuses writes with EINVAL,
// as cgroup_file_write does.
const toControlFile = <S>(spec: FileSpec<S, unknown>): ControlFile<S> => {
  const write = spec.write
  return {
    name: spec.name,
    ...(spec.on === undefined ? {} : { on: spec.on }),
    ...(spec.versions === undefined ? {} : { versions: spec.versions }),
    ...(spec.read === undefined ? {} : { read: spec.read }),
    ...(write === undefined
      ? {
          write: (_css: Css<S>, raw: string, ctx: FileContext) =>
            raw === '' ? undefined : E.left(ctx.refuse('EINVAL', `${spec.name} is read-only`)),
        }
      : {
          write: (css: Css<S>, raw: string, ctx: FileContext) => {
            if (raw === '') return undefined
            const decoded = write.codec.decode(raw)
            if (E.isLeft(decoded)) {
              return E.left(ctx.refuse(errnoOfValidation(decoded.left, write.invalid), `${spec.name}: invalid value ${JSON.stringify(raw)}`))
            }
            const refused = normalize(write.check?.(css, decoded.right, ctx))
            if (refused !== undefined && E.isLeft(refused)) return refused
            write.apply(css, decoded.right, ctx)
            return undefined
          },
        }),
  }
}

/**
 * Builds a controller from a {@link SubsystemDefinition}.
 *
 * @example
 * const counted = defineSubsystem<{ tasks: number }>({
 *   name: 'counted',
 *   state: () => ({ tasks: 0 }),
 *   files: [{ name: 'counted.tasks', read: (css) => `${css.state.tasks}\n` }],
 *   fork: { done: (ctx) => void ctx.css.state.tasks++ },
 *   release: (_task, css) => void css.state.tasks--,
 *   attach: {
 *     commit: (_ctx, moves) => {
 *       for (const move of moves) { move.from.state.tasks--; move.to.state.tasks++ }
 *     },
 *   },
 * })
 */
export const defineSubsystem = <S>(definition: SubsystemDefinition<S>): DefinedSubsystem<S> => {
  const hooks = definition.attach ?? {}
  const fork = definition.fork ?? {}
  const moves = movesCache()
  const { prepareSleep, prepareSpin, abortSpin, abortSleep, commit, attach, postAttach } = hooks
  const can = fork.can
  // Every controller object has the same keys in the same order (absent
  // hooks are undefined), so the core's calls through them stay monomorphic.
  const subsystem: DefinedSubsystem<S> = {
    name: definition.name,
    threaded: definition.threaded ?? false,
    definition,
    createState: (parent, cgroup) => definition.state(parent, cgroup),
    offline: definition.offline,
    cpusAllowed: definition.cpusAllowed,
    files: (definition.files ?? []).map((spec) => toControlFile(spec as FileSpec<S, unknown>)),
    cssOf: (task) => {
      const all = task.cssSet.css
      for (let i = 0; i < all.length; i++) {
        const css = all[i]
        if (css !== undefined && css.subsystem === subsystem) return css as Css<S>
      }
      return undefined
    },
    canFork: can === undefined ? undefined : (ctx: ForkContext<S>) => normalize(can(ctx)),
    cancelFork: fork.cancel,
    fork: fork.done,
    exit: definition.exit,
    release: definition.release,
    prepareSleep: prepareSleep === undefined ? undefined : (ctx: AttachContext<S>) => normalizeMaybe(prepareSleep(ctx, moves(ctx))),
    prepareSpin: prepareSpin === undefined ? undefined : (ctx: AttachContext<S>) => normalize(prepareSpin(ctx, moves(ctx))),
    abortSpin: abortSpin === undefined ? undefined : (ctx: AttachContext<S>) => abortSpin(ctx, moves(ctx)),
    abortSleep: abortSleep === undefined ? undefined : (ctx: AttachContext<S>) => abortSleep(ctx, moves(ctx)),
    commit: commit === undefined ? undefined : (ctx: AttachContext<S>) => commit(ctx, moves(ctx)),
    attach: attach === undefined ? undefined : (ctx: AttachContext<S>) => attach(ctx, moves(ctx)),
    postAttach: postAttach === undefined ? undefined : (ctx: AttachContext<S>) => postAttach(ctx, moves(ctx)),
  }
  return subsystem
}

/**
 * Adds a controller's own API (charge, account, acquire, …) to a defined
 * subsystem. A name the core already gives a meaning (`release`, `exit`,
 * `attach`, …) is a compile-time error: the core would call the API method
 * as a hook.
 */
export const extend = <S, A extends object>(
  subsystem: DefinedSubsystem<S>,
  api: A & { readonly [K in keyof A & keyof DefinedSubsystem<S>]: never },
): DefinedSubsystem<S> & A => Object.assign(subsystem, api)
