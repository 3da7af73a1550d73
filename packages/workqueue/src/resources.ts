/**
 * Resource use from inside a work, charged to the cgroup of the work's
 * context: simulated CPU time ({@link burn}), memory ({@link allocate}) and
 * forks ({@link forkFromWork}).
 * Both find the context through AsyncLocalStorage, so they work from code
 * that never sees the work.
 *
 * @module resources
 */
import * as E from 'fp-ts/lib/Either.js'
import { decode, systemError, type Cgroup, type CgtxError, type Css, type Task } from '@cgtx/core'
import type { MemoryState } from '@cgtx/subsystems'
import { Bytes, CpuTime } from './codecs.ts'
import { chargeCgroupOf, currentSlot } from './context.ts'

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

/** Memory charged by {@link allocate}; give it back with `free()`. */
export interface Allocation {
  readonly bytes: number
  /** The cgroup charged. */
  readonly cgroup: Cgroup
  free(): void
}

/**
 * Charges `bytes` of memory for the running work: through the memory
 * controller to the worker's memory cgroup (the work's cgroup under
 * `migrate` and `pools`, the root for a plain work), or under
 * `remote-charge` straight to the work's cgroup's counter. ENOMEM when a
 * level's `memory.max` would be exceeded (nothing charged); EINVAL outside a
 * work; ENODEV without a memory controller.
 */
export const allocate = (bytes: unknown): E.Either<CgtxError, Allocation> => {
  const slot = currentSlot()
  if (slot === undefined) return E.left(systemError('EINVAL', 'allocate', { reason: 'not inside a work' }))
  const memory = slot.controllers.memory
  const id = slot.host.subsystemId('memory')
  const hierarchy = id < 0 ? undefined : slot.host.hierarchyOf(id)
  if (memory === undefined || hierarchy === undefined) return E.left(systemError('ENODEV', 'allocate', { reason: 'no memory controller' }))
  const target = chargeCgroupOf(slot, hierarchy.name)!
  const worker = slot.task.cssSet.cgroup(hierarchy.index)
  if (target !== worker) {
    // Remote charge: the work's cgroup pays, though the worker is elsewhere.
    const amount = decode(Bytes, bytes, 'bytes')
    if (E.isLeft(amount)) return amount
    const css = target.effectiveCss(id) as Css<MemoryState> | undefined
    if (css === undefined) return E.left(systemError('ENODEV', 'allocate', { reason: 'no memory css' }))
    const over = css.state.counter.tryCharge(amount.right)
    if (over !== undefined) return E.left(systemError('ENOMEM', `remote charge of ${amount.right} bytes to ${target.path}`, { subsystem: 'memory' }))
    return E.right({ bytes: amount.right, cgroup: target, free: () => css.state.counter.uncharge(amount.right) })
  }
  const charged = memory.charge(slot.task, bytes)
  if (E.isLeft(charged)) return charged
  const charge = charged.right
  return E.right({ bytes: charge.bytes, cgroup: charge.css.cgroup, free: () => void memory.uncharge(charge) })
}
