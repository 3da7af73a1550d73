/**
 * `@cgtx/kernel/testing`: what tests against the real kernel need — a
 * confined {@link Sandbox} that cleans up even when a test fails, puppet
 * processes that fork, start threads, exit and reap on command, and the
 * scenario runner that runs one scenario on the model and on the kernel and
 * compares every answer.
 *
 * @module @cgtx/kernel/testing
 */
export * from './sandbox.ts'
export * from './puppet.ts'
export * from './scenario.ts'
