import { describe, expect, it } from 'vitest'
import { VirtualCgroupFs } from '@cgtx/core'
import { createHost, isLeft, isRight } from '@cgtx/subsystems'
import { describeConformance } from '@cgtx/subsystems/testing'
import { ioTokens } from '../src/ioTokens.ts'
import { kit } from '../src/kit.ts'

// step 6: conformance
describeConformance(kit)
// end step 6

describe('io_tokens', () => {
  // step 7: use
  it('limits tokens hierarchically, moves them with their task and returns them at reap', () => {
    const tokens = ioTokens()
    const made = createHost({ layout: 'v1', extra: [tokens] })
    if (isLeft(made)) throw new Error(made.left.message)
    const { host } = made.right
    const fs = new VirtualCgroupFs(host)
    fs.mkdirSync('/io_tokens/tenant')
    fs.mkdirSync('/io_tokens/tenant/a')
    fs.mkdirSync('/io_tokens/other')
    fs.writeSync('/io_tokens/tenant/io_tokens.max', '4')
    const task = host.spawn('worker')
    fs.writeSync('/io_tokens/tenant/a/cgroup.procs', `${task.tid}`)

    expect(isRight(tokens.acquire(task, 3))).toBe(true)
    const refused = tokens.acquire(task, 2)
    expect(isLeft(refused) && refused.left._tag === 'SystemError' && refused.left.errno).toBe('EAGAIN')
    expect(fs.readSync('/io_tokens/tenant/io_tokens.events')).toEqual({ _tag: 'Right', right: 'max 1\n' })

    fs.writeSync('/io_tokens/other/cgroup.procs', `${task.tid}`)
    expect(fs.readSync('/io_tokens/tenant/io_tokens.current')).toEqual({ _tag: 'Right', right: '0\n' })
    expect(fs.readSync('/io_tokens/other/io_tokens.current')).toEqual({ _tag: 'Right', right: '3\n' })

    host.exitSync(task.tid)
    host.reap(task.tid)
    expect(fs.readSync('/io_tokens/other/io_tokens.current')).toEqual({ _tag: 'Right', right: '0\n' })
  })
  // end step 7

  it('decodes its inputs', () => {
    const tokens = ioTokens()
    const made = createHost({ layout: 'v2', extra: [tokens] })
    if (isLeft(made)) throw new Error(made.left.message)
    const task = made.right.host.spawn()
    for (const bad of [0, -1, 1.5, '3', undefined]) expect(isLeft(tokens.acquire(task, bad))).toBe(true)
    expect(isLeft(tokens.acquire({ tid: 5 }, 1))).toBe(true)
    expect(isLeft(tokens.giveBack(task, 1))).toBe(true)
  })
})
