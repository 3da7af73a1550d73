/**
 * Test helpers: hosts with the built-in controllers, unwrapping Eithers, and
 * the errno of a failed virtual-cgroupfs operation.
 */
import * as E from 'fp-ts/lib/Either.js'
import { VirtualCgroupFs, type CgtxError } from '@cgtx/core'
import { createHost, type HostOptions } from '../src/index.ts'

/** Unwraps a Right or throws with the Left. */
export const right = <A>(either: E.Either<unknown, A>): A => {
  if (E.isLeft(either)) throw new Error(`expected Right, got ${JSON.stringify(either.left)}`)
  return either.right
}

/** The errno of a Left (or 'BadArgument'); throws on a Right. */
export const errno = (either: E.Either<CgtxError, unknown>): string => {
  if (E.isRight(either)) throw new Error('expected a Left')
  return either.left._tag === 'SystemError' ? either.left.errno : 'BadArgument'
}

/** A host with the built-ins, its virtual cgroupfs and the controllers. */
export const setup = (options: HostOptions) => {
  const made = right(createHost(options))
  return { ...made, fs: new VirtualCgroupFs(made.host) }
}
