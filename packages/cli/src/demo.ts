/**
 * `cgtx demo`: a short scenario a newcomer can follow. A host with one v2
 * hierarchy and two small controllers, a process moved between groups, and a
 * move refused in prepareSpin and rolled back, with the trace as a timeline.
 */
import * as E from 'fp-ts/lib/Either.js'
import { formatTimeline, Host, VirtualCgroupFs, type Subsystem } from '@cgtx/core'

/** Counts tasks per cgroup and refuses, in the spin phase, a move that would exceed `seats`. */
const seats = (limit: number): Subsystem<{ used: number }> => ({
  name: 'seats',
  createState: () => ({ used: 0 }),
  fork: (ctx) => void ctx.css.state.used++,
  exit: (_task, css) => void css.state.used--,
  prepareSpin(ctx) {
    const arriving = ctx.tasks.length
    const dst = ctx.to(ctx.tasks[0]!)
    if (dst.cgroup.isRoot || dst.state.used + arriving <= limit) return undefined
    return E.left(ctx.refuse('ENOSPC', `${dst.cgroup.path} has ${limit - dst.state.used} seat(s) left, ${arriving} needed`))
  },
  commit(ctx) {
    for (const entry of ctx.tasks) {
      ctx.from(entry).state.used--
      ctx.to(entry).state.used++
    }
  },
})

/** Notes each move in prepareSleep (as a real controller would take its mutex) and in attach. */
const journal = (lines: Array<string>): Subsystem<null> => ({
  name: 'journal',
  createState: () => null,
  prepareSleep: (ctx) => void lines.push(`  journal: preparing ${ctx.tasks.length} task(s) → ${ctx.destinations[0]!.path}`),
  abortSleep: () => void lines.push('  journal: aborted, nothing written'),
  attach: (ctx) => void lines.push(`  journal: recorded ${ctx.tasks.length} task(s) in ${ctx.destinations[0]!.path}`),
})

/** Runs the demo, writing to `print`; returns the exit code. */
export const runDemo = async (print: (line: string) => void): Promise<number> => {
  const notes: Array<string> = []
  const created = Host.create({
    subsystems: [journal(notes), seats(2)],
    hierarchies: [{ name: 'unified', version: 'v2', subsystems: ['journal', 'seats'] }],
  })
  if (E.isLeft(created)) {
    print(created.left.message)
    return 1
  }
  const host = created.right
  const fs = new VirtualCgroupFs(host)
  const step = async (title: string, op: () => Promise<E.Either<{ message: string }, unknown>>): Promise<void> => {
    print(`\n$ ${title}`)
    const result = await op()
    for (const note of notes.splice(0)) print(note)
    print(E.isLeft(result) ? `  → refused: ${result.left.message}` : `  → ok${result.right === undefined ? '' : `: ${JSON.stringify(result.right)}`}`)
  }

  print('cgtx demo — the cgroup attach path as a transaction\n')
  print('A host with one cgroup v2 hierarchy and two controllers: `journal` (prepares in the')
  print('sleeping phase) and `seats` (at most 2 tasks per group, checked in the spin phase).')

  await step('echo "+journal +seats" > /unified/cgroup.subtree_control', fs.write('/unified/cgroup.subtree_control', '+journal +seats'))
  await step('mkdir /unified/web /unified/batch', async () => E.map(() => undefined)(E.sequenceArray([host.mkdirSync({ hierarchy: 'unified', path: '/web' }), host.mkdirSync({ hierarchy: 'unified', path: '/batch' })])))
  const server = host.spawn('server')
  const helper = E.getOrElseW(() => server)(host.forkSync(server.tid, { thread: true, comm: 'server-io' }))
  print(`\nprocess ${server.tid} ("server") has threads ${server.tid} and ${helper.tid}`)
  await step(`echo ${server.tid} > /unified/web/cgroup.procs   # moves both threads at once`, fs.write('/unified/web/cgroup.procs', `${server.tid}`))
  await step('cat /unified/web/cgroup.threads', fs.read('/unified/web/cgroup.threads'))
  const batch = host.spawn('batch')
  await step(`echo ${batch.tid} > /unified/web/cgroup.procs   # web is full: seats refuses in prepareSpin`, fs.write('/unified/web/cgroup.procs', `${batch.tid}`))
  await step('cat /unified/web/cgroup.procs                 # unchanged: the failed move left no trace', fs.read('/unified/web/cgroup.procs'))
  await step(`echo ${batch.tid} > /unified/batch/cgroup.procs`, fs.write('/unified/batch/cgroup.procs', `${batch.tid}`))
  await step('cat /unified/batch/cgroup.events', fs.read('/unified/batch/cgroup.events'))

  print('\nThe trace of every callback (✓ ok, ✗ refused, ‼ plugin fault):\n')
  print(formatTimeline(host.trace.events()))
  return 0
}
