/**
 * Node's system errors (`err.code`) turned into the core's error union. The
 * errno names cgtx knows keep their name; any other code is reported as EIO
 * with the raw code kept in the message, so nothing is silently renamed.
 */
import { errnos, systemError, type Errno, type SystemError } from '@cgtx/core'

// libuv spells EOPNOTSUPP (95 on Linux, the same number) as ENOTSUP.
const aliases: Readonly<Record<string, Errno>> = { ENOTSUP: 'EOPNOTSUPP', EOPNOTSUPP: 'EOPNOTSUPP', ENOTEMPTY: 'EBUSY' }

/** The raw code of a thrown Node system error, if it is one. */
export const codeOf = (error: unknown): string | undefined =>
  typeof error === 'object' && error !== null && typeof (error as { code?: unknown }).code === 'string' ? (error as { code: string }).code : undefined

/** A {@link SystemError} for a failed syscall. */
export const fromNodeError = (error: unknown, operation: string): SystemError => {
  const code = codeOf(error)
  if (code !== undefined) {
    const known = aliases[code] ?? (errnos as ReadonlyArray<string>).find((name) => name === code)
    if (known !== undefined) return systemError(known as Errno, operation)
    return systemError('EIO', operation, { reason: `kernel returned ${code}` })
  }
  return systemError('EIO', operation, { reason: String(error) })
}
