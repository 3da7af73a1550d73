/**
 * The adapters from the kernel's callback set (can_attach / cancel_attach /
 * attach / post_attach) and from the single-phase prepare / undo / attached
 * protocol: each callback maps to its phase, only those that prepared are
 * cancelled, and with `abortOrder: 'kernel'` cancels run in the kernel's
 * ascending order (cgroup_migrate_execute stops at the subsystem that failed).
 */
import * as E from 'fp-ts/lib/Either.js'
import { describe, expect, it } from 'vitest'
import { Host, fromKernelCallbacks, fromSinglePhase, type AbortOrder, type Css, type Subsystem, type Task } from '@cgtx/core'
import { left, right } from './fixtures.ts'

type Log = Array<string>

// A kernel-style controller logging each callback with what the taskset showed.
const kernelStyle = (name: string, log: Log, refuse = false): Subsystem<{ name: string }> =>
  fromKernelCallbacks<{ name: string }>({
    name,
    createState: (_parent, cgroup) => ({ name: cgroup.path }),
    canAttach: (tset) => {
      const seen: Array<string> = []
      tset.forEach((task: Task, css: Css<{ name: string }>) => void seen.push(`${task.tid}->${css.state.name}`))
      log.push(`${name}.can_attach ${seen.join(',')} first=${tset.first()?.task.tid}`)
      return refuse ? E.left(tset.context.refuse('ENOSPC', `${name} says no`)) : undefined
    },
    cancelAttach: () => void log.push(`${name}.cancel_attach`),
    attach: (tset) => void log.push(`${name}.attach phase=${tset.context.phase}`),
    postAttach: (tset) => void log.push(`${name}.post_attach outcome=${tset.context.outcome}`),
  })

const hostOf = (subsystems: ReadonlyArray<Subsystem<any>>, abortOrder: AbortOrder = 'kernel') => {
  const host = right(
    Host.create({ subsystems, hierarchies: [{ name: 'h', subsystems: subsystems.map((s) => s.name) }], abortOrder }),
  )
  right(host.mkdirSync({ hierarchy: 'h', path: '/x' }))
  return host
}

describe('fromKernelCallbacks', () => {
  it('maps can_attach to prepareSleep, attach to attach, post_attach to postAttach, with the taskset', () => {
    const log: Log = []
    const k = kernelStyle('k', log)
    expect(Object.keys(k).filter((key) => /[A-Z]|attach|commit/.test(key)).sort()).toEqual(['abortSleep', 'attach', 'createState', 'postAttach', 'prepareSleep'])
    const host = hostOf([k])
    const task = host.spawn()
    const thread = right(host.forkSync(task.tid, { thread: true }))
    right(host.attachSync({ mode: 'process', pid: task.tid, to: { hierarchy: 'h', path: '/x' } }))
    expect(log).toEqual([
      `k.can_attach ${task.tid}->/x,${thread.tid}->/x first=${task.tid}`,
      'k.attach phase=attach',
      'k.post_attach outcome=committed',
    ])
  })

  it('cancels, in ascending order, only the controllers before the one that failed (abortOrder kernel)', () => {
    const log: Log = []
    const host = hostOf([kernelStyle('k1', log), kernelStyle('k2', log), kernelStyle('k3', log, true), kernelStyle('k4', log)])
    const task = host.spawn()
    const error = left(host.attachSync({ mode: 'thread', pid: task.tid, to: { hierarchy: 'h', path: '/x' } }))
    expect(error).toMatchObject({ errno: 'ENOSPC', subsystem: 'k3' })
    expect(log.map((line) => line.split(' ')[0])).toEqual([
      'k1.can_attach', 'k2.can_attach', 'k3.can_attach',
      'k1.cancel_attach', 'k2.cancel_attach',
      'k1.post_attach', 'k2.post_attach', 'k3.post_attach', 'k4.post_attach',
    ])
    expect(log.filter((line) => line.includes('post_attach')).every((line) => line.endsWith('outcome=aborted'))).toBe(true)
  })

  it('cancels in reverse with the default abort order', () => {
    const log: Log = []
    const host = hostOf([kernelStyle('k1', log), kernelStyle('k2', log), kernelStyle('k3', log, true)], 'reverse')
    const task = host.spawn()
    left(host.attachSync({ mode: 'thread', pid: task.tid, to: { hierarchy: 'h', path: '/x' } }))
    expect(log.filter((line) => line.includes('cancel'))).toEqual(['k2.cancel_attach', 'k1.cancel_attach'])
  })

  it('cancels every kernel-style controller when a native one fails in prepareSpin', () => {
    const log: Log = []
    const native: Subsystem<null> = {
      name: 'n',
      createState: () => null,
      prepareSpin: (ctx) => E.left(ctx.refuse('EBUSY', 'spin says no')),
    }
    const host = hostOf([kernelStyle('k1', log), native, kernelStyle('k2', log)])
    const task = host.spawn()
    expect(left(host.attachSync({ mode: 'thread', pid: task.tid, to: { hierarchy: 'h', path: '/x' } }))).toMatchObject({ errno: 'EBUSY', subsystem: 'n' })
    expect(log.filter((line) => line.includes('cancel'))).toEqual(['k1.cancel_attach', 'k2.cancel_attach'])
  })

  it('keeps the non-attach parts: threaded, files and fork hooks', () => {
    const refusing = fromKernelCallbacks<null>({
      name: 'f',
      threaded: true,
      createState: () => null,
      files: [{ name: 'f.value', read: () => '7\n' }],
      canFork: (ctx) => E.left(ctx.refuse('EAGAIN', 'no forks')),
    })
    expect(refusing.threaded).toBe(true)
    const host = hostOf([refusing])
    const task = host.spawn()
    expect(left(host.forkSync(task.tid))).toMatchObject({ errno: 'EAGAIN', subsystem: 'f' })
    expect(refusing.files?.[0]?.name).toBe('f.value')
  })

  it('lets can_attach sleep in an asynchronous attach', async () => {
    const log: Log = []
    const sleepy = fromKernelCallbacks<null>({
      name: 's',
      createState: () => null,
      canAttach: async () => {
        await new Promise((resolve) => setTimeout(resolve, 1))
        log.push('slept')
      },
      cancelAttach: () => void log.push('cancel'),
    })
    const host = hostOf([sleepy])
    const task = host.spawn()
    right(await host.attach({ mode: 'thread', pid: task.tid, to: { hierarchy: 'h', path: '/x' } })())
    expect(log).toEqual(['slept'])
  })
})

describe('fromSinglePhase', () => {
  const singlePhase = (name: string, log: Log, refuse = false) =>
    fromSinglePhase<null>({
      name,
      createState: () => null,
      prepare: (ctx) => {
        log.push(`${name}.prepare`)
        return refuse ? E.left(ctx.refuse('ENOMEM', `${name} is full`)) : undefined
      },
      undo: () => void log.push(`${name}.undo`),
      attached: (ctx) => void log.push(`${name}.attached ${ctx.outcome}`),
    })

  it('maps prepare → prepareSleep, undo → abortSleep, attached → attach', () => {
    const log: Log = []
    const s = singlePhase('s', log)
    expect(Object.keys(s).filter((key) => /[A-Z]|attach|commit/.test(key)).sort()).toEqual(['abortSleep', 'attach', 'createState', 'prepareSleep'])
    const host = hostOf([s])
    const task = host.spawn()
    right(host.attachSync({ mode: 'thread', pid: task.tid, to: { hierarchy: 'h', path: '/x' } }))
    expect(log).toEqual(['s.prepare', 's.attached committed'])
  })

  it('undoes only those that prepared, and never calls attached on failure', () => {
    const log: Log = []
    const host = hostOf([singlePhase('s1', log), singlePhase('s2', log), singlePhase('s3', log, true), singlePhase('s4', log)], 'reverse')
    const task = host.spawn()
    expect(left(host.attachSync({ mode: 'thread', pid: task.tid, to: { hierarchy: 'h', path: '/x' } }))).toMatchObject({ errno: 'ENOMEM', subsystem: 's3' })
    expect(log).toEqual(['s1.prepare', 's2.prepare', 's3.prepare', 's2.undo', 's1.undo'])
    expect(host.cgroupOf(task, host.hierarchy('h')!).path).toBe('/')
  })
})
