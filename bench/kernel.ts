/**
 * `pnpm bench kernel`: what one migration costs on the real kernel and in the
 * model, measured in the same run.
 *
 * - kernel: a puppet process moved back and forth between two pids cgroups of
 *   a sandbox by `cgroup.procs` writes — through {@link KernelCgroupFs}
 *   (open + write + close per move) and as a bare write(2) on open fds;
 *   plus the first write after 60 ms idle, which pays an RCU grace period
 *   for the global threadgroup rwsem (docs/kernel-observations.md §8);
 * - model: the same move on a Host laid out like this machine (pids
 *   controller from @cgtx/subsystems), through VirtualCgroupFs.writeSync and
 *   host.attachSync.
 *
 * Needs root and a writable /sys/fs/cgroup; everything is created in a
 * `cgtx-test-…` sandbox and removed.
 */
import * as E from 'fp-ts/lib/Either.js'
import { closeSync, constants, openSync, writeSync } from 'node:fs'
import { release } from 'node:os'
import { Host, VirtualCgroupFs } from '@cgtx/core'
import { requireSandbox } from '@cgtx/kernel/testing'
import { pids } from '@cgtx/subsystems'
import { measure, measureAsync, ratio, report, type Measurement, type Ratio } from './harness.ts'

const must = <A>(result: E.Either<{ message: string }, A>): A => {
  if (E.isLeft(result)) throw new Error(result.left.message)
  return result.right
}

// A kernel write that waits (RCU grace period) sleeps: its CPU time hides the
// wait, so the kernel rows are compared on wall-clock medians as well.
const wallRatio = (rows: ReadonlyArray<Measurement>, of: string, against: string, name: string): Ratio => {
  const a = rows.find((row) => row.name === of)!
  const b = rows.find((row) => row.name === against)!
  return { name: `${name} (wall)`, of, against, value: a.wallNs / b.wallNs }
}

/** Runs the benchmark. */
export const run = async (): Promise<void> => {
  const sandbox = await requireSandbox({ hierarchies: ['pids'] })
  const rows: Array<Measurement> = []
  try {
    const fs = sandbox.fs
    must(fs.mkdirSync(sandbox.path('pids', '/a')))
    must(fs.mkdirSync(sandbox.path('pids', '/b')))
    const puppet = must(await sandbox.spawn())
    const files = [sandbox.path('pids', '/a/cgroup.procs'), sandbox.path('pids', '/b/cgroup.procs')]
    const value = `${puppet.pid}`
    rows.push(measure('kernel: KernelCgroupFs.writeSync cgroup.procs (open+write+close)', (i) => must(fs.writeSync(files[i & 1]!, value)), { samples: 15, opsPerSample: 200, warmup: 200 }))
    const fds = files.map((file) => openSync(must(fs.realPath(file, 'write')), constants.O_WRONLY))
    const bytes = Buffer.from(value)
    rows.push(measure('kernel: write(2) cgroup.procs on open fds', (i) => void writeSync(fds[i & 1]!, bytes), { samples: 15, opsPerSample: 200, warmup: 200 }))
    let flip = 0
    rows.push(
      await measureAsync('kernel: first cgroup.procs write after 60 ms idle', async () => void writeSync(fds[flip++ & 1]!, bytes), {
        samples: 9,
        opsPerSample: 1,
        warmup: 1,
        setup: () => new Promise((resolve) => setTimeout(resolve, 60)),
      }),
    )
    for (const fd of fds) closeSync(fd)

    // The model: the same layout, the same move.
    const host = must(Host.create({ subsystems: [pids()], hierarchies: [{ name: 'pids', subsystems: ['pids'] }] }))
    const model = new VirtualCgroupFs(host)
    must(model.mkdirSync('/pids/a'))
    must(model.mkdirSync('/pids/b'))
    const task = host.spawn('puppet')
    const modelValue = `${task.tid}`
    rows.push(measure('model: VirtualCgroupFs.writeSync cgroup.procs', (i) => must(model.writeSync(i & 1 ? '/pids/b/cgroup.procs' : '/pids/a/cgroup.procs', modelValue)), { samples: 15, opsPerSample: 20_000 }))
    const to = [{ hierarchy: 'pids', path: '/a' }, { hierarchy: 'pids', path: '/b' }]
    rows.push(measure('model: host.attachSync process', (i) => must(host.attachSync({ mode: 'process', pid: task.tid, to: to[i & 1]! })), { samples: 15, opsPerSample: 20_000 }))
  } finally {
    const { leftovers } = await sandbox.cleanup()
    if (leftovers.length > 0) console.error(`cleanup left: ${leftovers.join('; ')}`)
  }
  const fsWrite = 'kernel: KernelCgroupFs.writeSync cgroup.procs (open+write+close)'
  const pairs: ReadonlyArray<readonly [string, string, string]> = [
    [fsWrite, 'model: VirtualCgroupFs.writeSync cgroup.procs', 'kernel fs write / model fs write'],
    ['kernel: write(2) cgroup.procs on open fds', 'model: host.attachSync process', 'kernel write(2) / model attachSync'],
    ['kernel: first cgroup.procs write after 60 ms idle', 'kernel: write(2) cgroup.procs on open fds', 'idle first write / back-to-back write'],
    [fsWrite, 'kernel: write(2) cgroup.procs on open fds', 'backend overhead (open+close) / bare write'],
  ]
  report('kernel', rows, pairs.flatMap(([of, against, name]) => [ratio(rows, of, against, `${name} (cpu)`), wallRatio(rows, of, against, name)]), { kernelRelease: release(), hierarchy: 'pids (v1)', process: 'puppet (python3, 1 thread)' })
}
