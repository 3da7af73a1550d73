// The README's example, verbatim (test/readme.test.ts checks both).
import * as E from 'fp-ts/lib/Either.js'
import { VirtualCgroupFs } from '@cgtx/core'
import { createHost } from '@cgtx/subsystems'

/** Builds a v1 host like the test machine, limits a cgroup and moves a process into it. */
export const quickStart = (): ReadonlyArray<string> => {
  const made = createHost({ layout: 'v1', cpus: 2 })
  if (E.isLeft(made)) throw new Error(made.left.message)
  const { host, builtins } = made.right
  const fs = new VirtualCgroupFs(host)
  const out: Array<string> = []
  const show = (result: E.Either<{ message: string }, unknown>): string => (E.isLeft(result) ? result.left.message : JSON.stringify(result.right))

  // Two tasks at most in /pids/app; a fork beyond that is refused with EAGAIN.
  fs.mkdirSync('/pids/app')
  fs.writeSync('/pids/app/pids.max', '2')
  const server = host.spawn('server')
  fs.writeSync('/pids/app/cgroup.procs', `${server.tid}`)
  host.forkSync(server.tid, { thread: true })
  out.push(show(host.forkSync(server.tid)))
  out.push(show(fs.readSync('/pids/app/pids.events')))

  // A new v1 cpuset is empty: moving into it fails with ENOSPC until it has cpus and mems.
  fs.mkdirSync('/cpuset/app')
  out.push(show(fs.writeSync('/cpuset/app/cgroup.procs', `${server.tid}`)))
  fs.writeSync('/cpuset/app/cpuset.cpus', '1')
  fs.writeSync('/cpuset/app/cpuset.mems', '0')
  fs.writeSync('/cpuset/app/cgroup.procs', `${server.tid}`)
  out.push(`affinity ${JSON.stringify(server.affinity)}`)

  // Memory charged in a cgroup is uncharged there, even after the task moved.
  fs.mkdirSync('/memory/app')
  fs.writeSync('/memory/app/cgroup.procs', `${server.tid}`)
  const charge = builtins.memory.charge(server, 8192)
  fs.writeSync('/memory/cgroup.procs', `${server.tid}`)
  out.push(show(fs.readSync('/memory/app/memory.usage_in_bytes')))
  if (E.isRight(charge)) builtins.memory.uncharge(charge.right)
  out.push(show(fs.readSync('/memory/app/memory.usage_in_bytes')))
  return out
}
