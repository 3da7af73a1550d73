/**
 * The closed set of errors cgtx returns.
 *
 * `BadArgument` is a caller's mistake caught before anything was touched;
 * `SystemError` is a refusal by the (model or real) kernel, carrying the errno
 * the kernel would return and what was being done. A plugin fault (a callback
 * that threw, slept in the spin phase or broke a lock rule) is a `SystemError`
 * too, with a `fault` naming the subsystem and phase, so callers handle one
 * union everywhere.
 *
 * @module errors
 */

/** The errno names cgtx can return; each means what it means in Linux. */
export type Errno =
  | 'EINVAL'
  | 'ESRCH'
  | 'EBUSY'
  | 'ENOSPC'
  | 'ENOMEM'
  | 'EAGAIN'
  | 'EOPNOTSUPP'
  | 'EACCES'
  | 'ENODEV'
  | 'EEXIST'
  | 'ERANGE'
  | 'ENOENT'
  | 'EPERM'
  | 'ENOTDIR'
  | 'EISDIR'
  | 'EIO'
  | 'EOVERFLOW'

/** The errno names as a list, for codecs and exhaustive tests. */
export const errnos: ReadonlyArray<Errno> = [
  'EINVAL',
  'ESRCH',
  'EBUSY',
  'ENOSPC',
  'ENOMEM',
  'EAGAIN',
  'EOPNOTSUPP',
  'EACCES',
  'ENODEV',
  'EEXIST',
  'ERANGE',
  'ENOENT',
  'EPERM',
  'ENOTDIR',
  'EISDIR',
  'EIO',
  'EOVERFLOW',
]

/** An input that failed to decode; nothing was changed. */
export interface BadArgument {
  readonly _tag: 'BadArgument'
  /** Dotted path of the offending field, e.g. `request.pid`. */
  readonly field: string
  /** The value that was supplied. */
  readonly value: unknown
  /** What was expected instead. */
  readonly expected: string
  readonly message: string
}

/** What kind of plugin misbehaviour turned into a {@link SystemError}. */
export type FaultKind = 'threw' | 'rejected' | 'slept' | 'lock-rule' | 'bad-return'

/** Details of a plugin fault: which subsystem broke which rule in which phase. */
export interface Fault {
  readonly kind: FaultKind
  readonly subsystem: string
  readonly phase: string
  /** The thrown value or a description of the violation. */
  readonly detail: unknown
}

/** A refusal with the kernel's errno; nothing was changed. */
export interface SystemError {
  readonly _tag: 'SystemError'
  readonly errno: Errno
  /** What was being done, e.g. `write /pids/a/cgroup.procs`. */
  readonly operation: string
  /** The subsystem that refused, when one did. */
  readonly subsystem?: string
  /** Present when the error stands for a plugin fault rather than a refusal. */
  readonly fault?: Fault
  readonly message: string
}

/** Every error cgtx returns. */
export type CgtxError = BadArgument | SystemError

const describe = (value: unknown): string => {
  if (typeof value === 'string') return JSON.stringify(value)
  if (typeof value === 'bigint') return `${value}n`
  if (typeof value === 'function') return '[function]'
  try {
    const text = JSON.stringify(value)
    return text === undefined ? String(value) : text
  } catch {
    return String(value)
  }
}

/** Builds a {@link BadArgument}. */
export const badArgument = (field: string, value: unknown, expected: string): BadArgument => ({
  _tag: 'BadArgument',
  field,
  value,
  expected,
  message: `${field}: expected ${expected}, got ${describe(value)}`,
})

/** Builds a {@link SystemError}. */
export const systemError = (
  errno: Errno,
  operation: string,
  detail?: { readonly subsystem?: string; readonly reason?: string; readonly fault?: Fault },
): SystemError => ({
  _tag: 'SystemError',
  errno,
  operation,
  ...(detail?.subsystem === undefined ? {} : { subsystem: detail.subsystem }),
  ...(detail?.fault === undefined ? {} : { fault: detail.fault }),
  message: `${operation}: ${errno}${detail?.subsystem === undefined ? '' : ` (${detail.subsystem})`}${
    detail?.reason === undefined ? '' : `: ${detail.reason}`
  }`,
})

/** Turns a plugin fault into the {@link SystemError} a transaction returns. */
export const faultError = (operation: string, fault: Fault): SystemError =>
  systemError('EINVAL', operation, {
    subsystem: fault.subsystem,
    fault,
    reason: `${fault.kind} in ${fault.phase}: ${fault.detail instanceof Error ? fault.detail.message : describe(fault.detail)}`,
  })

/** True for values that are a {@link CgtxError}. */
export const isCgtxError = (value: unknown): value is CgtxError =>
  typeof value === 'object' &&
  value !== null &&
  ((value as { _tag?: unknown })._tag === 'BadArgument' || (value as { _tag?: unknown })._tag === 'SystemError')

/** The errno of a {@link SystemError}, undefined for a {@link BadArgument}. */
export const errnoOf = (error: CgtxError): Errno | undefined => (error._tag === 'SystemError' ? error.errno : undefined)
