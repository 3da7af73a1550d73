/**
 * `@cgtx/kernel`: the cgtx operations on the real kernel's cgroupfs.
 *
 * - {@link discover}: the cgroup mounts (v1, v2, hybrid) from
 *   `/proc/self/mountinfo` and `/proc/cgroups`;
 * - {@link KernelCgroupFs}: the core's `CgroupFs` against the kernel, with
 *   path guards (confinement to a prefix, the memory hierarchy refused);
 * - {@link moveTasks}: all-or-nothing moves of real processes and threads
 *   across hierarchies, with rollback, an explicit indeterminate outcome,
 *   retry policies and an optional model consulted first.
 *
 * Test helpers (sandbox, puppet processes, model-vs-kernel scenarios) are in
 * `@cgtx/kernel/testing`. See the package README for a runnable example.
 *
 * @module @cgtx/kernel
 */
export * from './discovery.ts'
export * from './cgroupfs.ts'
export * from './membership.ts'
export * from './retry.ts'
export * from './transaction.ts'
