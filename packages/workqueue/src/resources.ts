/**
 * Resource use from inside a work, charged to the cgroup of the work's
 * context: simulated CPU time ({@link burn}) and forks ({@link forkFromWork}).
 * Both find the context through AsyncLocalStorage, so they work from code
 * that never sees the work.
 *
 * @module resources
 */
import * as E from 'fp-ts/lib/Either.js'
import { decode, systemError, type CgtxError, type Task } from '@cgtx/core'
import { CpuTime } from './codecs.ts'
import { currentSlot } from './context.ts'

/**
 * Consumes `ms` of simulated CPU time on the host's clock. The worker counts
 * as running meanwhile; the time is scheduled among runnable works by their
 * cgroups' `cpu.weight`, throttled by `cpu.max`, limited to the CPUs the
 * pool and the cgroup's cpuset allow, and accounted to the cgroup charges
 * land in. Outside a work: EINVAL.
 */
export const burn = async (ms: unknown): Promise<E.Either<CgtxError, void>> => {
  const decoded = decode(CpuTime, ms, 'ms')
  if (E.isLeft(decoded)) return decoded
  const slot = currentSlot()
  if (slot === undefined) return E.left(systemError('EINVAL', 'burn', { reason: 'not inside a work' }))
  await slot.burn(decoded.right)
  return E.right(undefined)
}

/**
 * Forks a child of the worker task (a kernel thread, in the worker's
 * css_set): the controllers' fork hooks decide, e.g. pids.max of the
 * worker's cgroup refuses with EAGAIN. Under `remote-charge` the worker is in
 * the root, so the work's cgroup limits do not apply (see README).
 */
export const forkFromWork = (comm?: unknown): E.Either<CgtxError, Task> => {
  const slot = currentSlot()
  if (slot === undefined) return E.left(systemError('EINVAL', 'fork', { reason: 'not inside a work' }))
  return slot.host.forkSync(slot.task.tid, comm === undefined ? {} : { comm })
}
