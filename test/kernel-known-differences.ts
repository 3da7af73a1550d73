/**
 * Known differences between the model and this kernel, each with its reason;
 * docs/kernel.md carries the same table. A divergence not listed here fails
 * the differential suite.
 */
import * as E from 'fp-ts/lib/Either.js'
import { discover, type CgroupMounts } from '@cgtx/kernel'
import type { StepResult } from '@cgtx/kernel/testing'

// Controllers compiled into this kernel (/proc/cgroups).
const compiledIn = new Set(E.getOrElseW(() => [])(E.map((mounts: CgroupMounts) => mounts.controllers.map((row) => row.subsystem))(discover())))

/** One row of the table: when it applies and why. */
interface KnownDifference {
  readonly reason: string
  readonly applies: (result: StepResult) => boolean
}

/** The table (same rows as docs/kernel.md). */
export const knownDifferences: ReadonlyArray<KnownDifference> = [
  {
    reason:
      'cgroup.subtree_control naming a controller compiled into the kernel but absent from the model: the kernel knows every controller in /proc/cgroups (ENOENT when not offered, `-name` a no-op); the model knows only the subsystems it was built with (EINVAL)',
    applies: ({ step, model }) =>
      step.op === 'write' &&
      step.path.endsWith('/cgroup.subtree_control') &&
      model?.ok === false &&
      model.error === 'EINVAL' &&
      step.value.split(/\s+/).some((token) => compiledIn.has(token.replace(/^[+-]/, ''))),
  },
  {
    reason:
      'sched_setscheduler to SCHED_FIFO/RR of a task in a cpu group without RT runtime: the kernel (CONFIG_RT_GROUP_SCHED) refuses with EPERM; the model\'s Host.setPolicy does not consult the cpu controller',
    applies: ({ step, model, kernel }) => step.op === 'policy' && step.policy !== 'normal' && model?.ok === true && kernel?.ok === false && kernel.error === 'EPERM',
  },
]

/** Why the model and the kernel may answer this step differently, or undefined if they must agree. */
export const knownDifference = (result: StepResult): string | undefined => knownDifferences.find((row) => row.applies(result))?.reason
