/**
 * Waiting for one work wherever it was queued: flush_work and
 * cancel_work_sync (workqueue-anchors §1.7, §1.8).
 *
 * @module workSync
 */
import * as E from 'fp-ts/lib/Either.js'
import type { CgtxError } from '@cgtx/core'
import type { Pwq } from './internal/pwq.ts'
import { Place, Work, notAWork } from './work.ts'
import { RIGHT_FALSE, RIGHT_TRUE, type Workqueue } from './workqueue.ts'
import type { WorkqueueSystem } from './system.ts'

/**
 * flush_work: waits until the last queued instance of `work` has finished
 * (or was cancelled) and no earlier one still runs: on return the work is
 * idle unless it was queued again meanwhile. Resolves `Right(true)` if it
 * waited, `Right(false)` if the work was idle; a non-work is a `BadArgument`.
 */
export const flushWork = (work: unknown): Promise<E.Either<CgtxError, boolean>> => {
  if (!(work instanceof Work)) return Promise.resolve(notAWork(work))
  // While a cancel holds PENDING there is no pending instance to wait for.
  if (work.pending && work.canceling === undefined) return new Promise((resolve) => (work.pendingWaiters ??= []).push(() => resolve(RIGHT_TRUE)))
  if (work.runningOn === undefined) return Promise.resolve(RIGHT_FALSE)
  return new Promise((resolve) => (work.runWaiters ??= []).push(() => resolve(RIGHT_TRUE)))
}

/**
 * cancel_work_sync: takes a pending instance back (from its timer, worklist
 * or overflow list; its cgroup reference is released) and waits for a
 * running one to finish. Queue attempts made meanwhile return `false`. On
 * return the work is neither pending nor running. Resolves `Right(true)` if
 * it was pending; a non-work is a `BadArgument`.
 */
export const cancelWorkSync = (work: unknown): Promise<E.Either<CgtxError, boolean>> => {
  if (!(work instanceof Work)) return Promise.resolve(notAWork(work))
  if (work.canceling !== undefined) return work.canceling.then(() => RIGHT_FALSE)
  const wasPending = work.pending
  if (wasPending) systemOf(work)?.steal(work)
  work.pending = true
  const running =
    work.runningOn === undefined ? Promise.resolve() : new Promise<void>((resolve) => (work.runWaiters ??= []).push(resolve))
  const canceling = running.then(() => {
    work.pending = false
    work.canceling = undefined
    return wasPending
  })
  work.canceling = canceling
  return canceling.then((stolen) => (stolen ? RIGHT_TRUE : RIGHT_FALSE))
}

const systemOf = (work: Work): WorkqueueSystem | undefined => {
  if (work.place === Place.timer) return (work.holder as Workqueue).system
  const pwq = work.pwq as Pwq | undefined
  return pwq === undefined ? undefined : (pwq.wq as Workqueue).system
}
