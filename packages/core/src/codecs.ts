/**
 * io-ts codecs for every public input, and the one function that turns a
 * decoding failure into a {@link BadArgument} naming the field and the value.
 *
 * @module codecs
 */
import * as E from 'fp-ts/lib/Either.js'
import * as t from 'io-ts'
import { badArgument, type BadArgument } from './errors.ts'

/** The largest PID Linux hands out on 64-bit (`PID_MAX_LIMIT`). */
export const PID_MAX_LIMIT = 4_194_304

// The predicates behind the codecs.
/** @internal The {@link Pid} check as a plain predicate. */
export const isPid = (u: unknown): boolean => typeof u === 'number' && Number.isInteger(u) && u >= 1 && u <= PID_MAX_LIMIT
// `/`, or `/` + names; a name is 1–255 characters, no `/`, newline or NUL, not `.` or `..`.
const CGROUP_PATH = /^(?:\/|(?:\/(?!\.\.?(?:\/|$))[^/\n\0]{1,255})+)$/
const isCgroupPath = (u: unknown): boolean => typeof u === 'string' && CGROUP_PATH.test(u)
const HIERARCHY_NAME = /^[A-Za-z0-9_][A-Za-z0-9_,.=-]*$/
const isHierarchyName = (u: unknown): boolean => typeof u === 'string' && HIERARCHY_NAME.test(u)

interface PidBrand {
  readonly Pid: unique symbol
}
/** A task id (TID) or process id (TGID): an integer in 1..PID_MAX_LIMIT. */
export const Pid = t.brand(
  t.Int,
  (n): n is t.Branded<t.Int, PidBrand> => isPid(n),
  'Pid',
)
/** A decoded {@link Pid}. */
export type Pid = t.TypeOf<typeof Pid>

interface CgroupNameBrand {
  readonly CgroupName: unique symbol
}
/** One path component: non-empty, no `/`, no newline, not `.` or `..`, at most 255 bytes. */
export const CgroupName = t.brand(
  t.string,
  (s): s is t.Branded<string, CgroupNameBrand> =>
    s.length > 0 && s.length <= 255 && s !== '.' && s !== '..' && !/[/\n\0]/.test(s),
  'CgroupName',
)
/** A decoded {@link CgroupName}. */
export type CgroupName = t.TypeOf<typeof CgroupName>

interface CgroupPathBrand {
  readonly CgroupPath: unique symbol
}
/** An absolute cgroup path inside one hierarchy: `/`, `/a`, `/a/b`, … (no trailing slash). */
export const CgroupPath = t.brand(
  t.string,
  (s): s is t.Branded<string, CgroupPathBrand> => isCgroupPath(s),
  'CgroupPath',
)
/** A decoded {@link CgroupPath}. */
export type CgroupPath = t.TypeOf<typeof CgroupPath>

interface HierarchyNameBrand {
  readonly HierarchyName: unique symbol
}
/** The name a hierarchy is mounted under, e.g. `pids`, `cpu,cpuacct`, `unified`. */
export const HierarchyName = t.brand(
  t.string,
  (s): s is t.Branded<string, HierarchyNameBrand> => isHierarchyName(s),
  'HierarchyName',
)
/** A decoded {@link HierarchyName}. */
export type HierarchyName = t.TypeOf<typeof HierarchyName>

/** Which tasks one attach moves: one thread, a whole process, or every task of a cgroup. */
export const AttachMode = t.keyof({ thread: null, process: null, all: null }, 'AttachMode')
/** A decoded {@link AttachMode}. */
export type AttachMode = t.TypeOf<typeof AttachMode>

/** A cgroup named by its hierarchy and path. */
export const CgroupRef = t.type({ hierarchy: HierarchyName, path: CgroupPath }, 'CgroupRef')
/** A decoded {@link CgroupRef}. */
export type CgroupRef = t.TypeOf<typeof CgroupRef>

const Destinations = t.union([CgroupRef, t.array(CgroupRef)], 'Destinations')

/**
 * An attach request. `to` is one destination or several in different
 * hierarchies, all moved in one transaction. `thread` and `process` name a
 * task by `pid`; `all` moves every live task of the cgroup `from` (in the
 * first destination's hierarchy).
 */
export const AttachRequest = t.union(
  [
    t.strict({ mode: t.keyof({ thread: null, process: null }), pid: Pid, to: Destinations }),
    t.strict({ mode: t.literal('all'), from: CgroupPath, to: Destinations }),
  ],
  'AttachRequest',
)
/** A decoded {@link AttachRequest}. */
export type AttachRequest = t.TypeOf<typeof AttachRequest>

/** Scheduling policy of a task, as far as controllers care. */
export const SchedPolicy = t.keyof({ normal: null, batch: null, idle: null, fifo: null, rr: null }, 'SchedPolicy')
/** A decoded {@link SchedPolicy}. */
export type SchedPolicy = t.TypeOf<typeof SchedPolicy>

const fieldOf = (field: string, context: t.Context): string => {
  // Union and intersection members appear in the context under their index; they are not fields.
  const keys: Array<string> = []
  for (let i = 1; i < context.length; i++) {
    const parent = context[i - 1]?.type
    if (parent instanceof t.UnionType || parent instanceof t.IntersectionType) continue
    const key = context[i]?.key
    if (key !== undefined && key !== '') keys.push(key)
  }
  return keys.length === 0 ? field : `${field}.${keys.join('.')}`
}

// For a union, the member that came closest (fewest errors) explains the failure best.
const closestErrors = (errors: t.Errors): t.Errors => {
  const root = errors[0]?.context[0]?.type
  if (!(root instanceof t.UnionType)) return errors
  const byMember = new Map<string, Array<t.ValidationError>>()
  for (const error of errors) {
    const member = error.context[1]?.key ?? ''
    byMember.set(member, [...(byMember.get(member) ?? []), error])
  }
  let best: Array<t.ValidationError> | undefined
  for (const group of byMember.values()) if (best === undefined || group.length < best.length) best = group
  return best ?? errors
}

/**
 * Decodes `input` with `codec`; a failure names the failing field under
 * `field`, the value found there and the type that was expected.
 */
export const decode = <A>(codec: t.Decoder<unknown, A>, input: unknown, field: string): E.Either<BadArgument, A> => {
  const result = codec.decode(input)
  if (E.isRight(result)) return result
  const first = closestErrors(result.left)[0]
  if (first === undefined) return E.left(badArgument(field, input, codec.name))
  const leaf = first.context[first.context.length - 1]
  return E.left(badArgument(fieldOf(field, first.context), first.value, leaf === undefined ? codec.name : leaf.type.name))
}
