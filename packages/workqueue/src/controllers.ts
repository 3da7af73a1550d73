/**
 * Connects the built-in controllers of `@cgtx/subsystems` to the workqueue
 * system: the CPU scheduler reads `cpu.weight` / `cpu.max` from the cpu
 * controller's state and adds the time it grants to `cpu.stat`; burns keep
 * to `cpuset.cpus.effective`; {@link allocate} charges memory through the
 * memory controller (or, under `remote-charge`, straight to the work's
 * cgroup, like the kernel's `set_active_memcg`).
 *
 * @module controllers
 */
import type { Cgroup, Css, Host } from '@cgtx/core'
import type { CpuState, CpuSubsystem, CpusetState, CpusetSubsystem, MemorySubsystem } from '@cgtx/subsystems'
import type { CpuPolicy } from './cpu.ts'
import type { Controllers } from './system.ts'

/** The controllers {@link fromBuiltins} connects; any may be left out. */
export interface BuiltinControllers {
  readonly cpu?: CpuSubsystem
  readonly cpuset?: CpusetSubsystem
  readonly memory?: MemorySubsystem
}

// cpu.weight as the kernel derives it from shares.
const weightOfShares = (shares: number): number => Math.max(1, Math.round((shares * 100) / 1024))

/** The workqueue {@link Controllers} for the built-in controllers bound on `host`. */
export const fromBuiltins = (host: Host, builtins: BuiltinControllers): Controllers => {
  const cssIn = <S>(cgroup: Cgroup, name: string): Css<S> | undefined => {
    const id = host.subsystemId(name)
    return id < 0 ? undefined : (cgroup.effectiveCss(id) as Css<S> | undefined)
  }
  const cpu: CpuPolicy | undefined =
    builtins.cpu === undefined
      ? undefined
      : {
          weight: (cgroup) => {
            const css = cssIn<CpuState>(cgroup, 'cpu')
            return css === undefined || css.cgroup !== cgroup ? 100 : weightOfShares(css.state.shares)
          },
          bandwidth: (cgroup) => {
            const css = cssIn<CpuState>(cgroup, 'cpu')
            if (css === undefined || css.cgroup !== cgroup || css.state.quota === Number.POSITIVE_INFINITY) return undefined
            return { quotaMs: css.state.quota / 1000, periodMs: css.state.period / 1000 }
          },
          // cpu.stat usage of the charged cgroup and its ancestors (the scheduler throttles).
          charge: (cgroup, ms) => {
            for (let at = cssIn<CpuState>(cgroup, 'cpu'); at !== undefined; at = at.parent) at.state.usageNs += ms * 1e6
          },
        }
  const cpusetId = host.subsystemId('cpuset')
  const cpusetHierarchy = cpusetId < 0 ? undefined : host.hierarchyOf(cpusetId)
  return {
    ...(cpu === undefined ? {} : { cpu }),
    ...(builtins.cpuset === undefined || cpusetHierarchy === undefined
      ? {}
      : {
          cpuset: {
            hierarchy: cpusetHierarchy.name,
            cpus: (cgroup: Cgroup) => cssIn<CpusetState>(cgroup, 'cpuset')?.state.effectiveCpus,
          },
        }),
    ...(builtins.memory === undefined ? {} : { memory: builtins.memory }),
  }
}
