import * as E from 'fp-ts/lib/Either.js'
import { existsSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { KernelCgroupFs } from '@cgtx/kernel'
import { requireSandbox, type Sandbox } from '@cgtx/kernel/testing'

let sandbox: Sandbox
beforeAll(async () => {
  sandbox = await requireSandbox()
})
afterAll(async () => {
  expect((await sandbox.cleanup()).leftovers).toEqual([])
})

const errno = (result: E.Either<{ _tag: string; errno?: string }, unknown>): string =>
  E.isRight(result) ? 'ok' : result.left._tag === 'BadArgument' ? 'BadArgument' : result.left.errno!

describe('KernelCgroupFs on the real kernel', () => {
  it('maps kernel refusals to errnos', () => {
    const fs = sandbox.fs
    const a = sandbox.path('pids', '/a')
    expect(errno(fs.mkdirSync(a))).toBe('ok')
    expect(errno(fs.mkdirSync(a))).toBe('EEXIST')
    expect(errno(fs.mkdirSync(sandbox.path('pids', '/x/y')))).toBe('ENOENT')
    expect(errno(fs.writeSync(`${a}/cgroup.procs`, 'abc'))).toBe('EINVAL')
    expect(errno(fs.writeSync(`${a}/cgroup.procs`, '-1'))).toBe('EINVAL')
    expect(errno(fs.writeSync(`${a}/cgroup.procs`, '4194304'))).toBe('ESRCH')
    expect(errno(fs.writeSync(`${a}/pids.current`, '1'))).toBe('EINVAL') // a read-only cgroup file refuses writes with EINVAL, even for root
    expect(errno(fs.writeSync(`${a}/cgroup.procs`, ''))).toBe('ok') // a zero-length write is a no-op
    expect(errno(fs.writeSync(`${a}/no.such.file`, '1'))).toBe('ENOENT')
    expect(errno(fs.readSync(a))).toBe('EISDIR')
    expect(errno(fs.readSync(`${a}/pids.max`))).toBe('ok')
    expect(fs.listSync(a)).toMatchObject({ _tag: 'Right' })
    expect(errno(fs.rmdirSync(a))).toBe('ok')
    expect(errno(fs.rmdirSync(a))).toBe('ENOENT')
  })

  it('refuses bad arguments before any syscall', () => {
    const fs = sandbox.fs
    const before = existsSync('/sys/fs/cgroup/pids/x')
    expect(errno(fs.mkdirSync('/pids/x'))).toBe('BadArgument') // outside the confinement
    expect(existsSync('/sys/fs/cgroup/pids/x')).toBe(before)
    expect(errno(fs.mkdirSync(sandbox.path('pids', '/../x')))).toBe('BadArgument')
    expect(errno(fs.mkdirSync(sandbox.path('pids', '/./x')))).toBe('BadArgument')
    expect(errno(fs.mkdirSync('relative/path'))).toBe('BadArgument')
    expect(errno(fs.mkdirSync('/nosuchmount/x'))).toBe('BadArgument')
    expect(errno(fs.readSync('/memory/tasks'))).toBe('BadArgument')
    expect(errno(fs.writeSync(sandbox.path('pids', '/cgroup.procs'), 42 as unknown as string))).toBe('BadArgument')
    expect(errno(fs.writeSync(sandbox.path('pids'), '1'))).toBe('BadArgument') // the prefix directory itself is not a file
    expect(errno(fs.mkdirSync(42 as unknown as string))).toBe('BadArgument')
  })

  it('allows memory only when asked, and then only reads in this suite', () => {
    const open = KernelCgroupFs.open({ allowMemory: true })
    expect(E.isRight(open)).toBe(true)
    if (E.isRight(open)) expect(errno(open.right.readSync('/memory/memory.usage_in_bytes'))).toBe('ok')
    expect(KernelCgroupFs.open({ confine: '..' })).toMatchObject({ _tag: 'Left', left: { _tag: 'BadArgument', field: 'options.confine' } })
    expect(KernelCgroupFs.open({ hierarchies: ['nope'] })).toMatchObject({ _tag: 'Left', left: { _tag: 'BadArgument' } })
  })

  it('confines to the allowed hierarchies', () => {
    const open = KernelCgroupFs.open({ confine: sandbox.prefix, hierarchies: ['pids'] })
    if (E.isLeft(open)) throw new Error(open.left.message)
    expect(errno(open.right.readSync(sandbox.path('freezer', '/tasks')))).toBe('BadArgument')
    expect(errno(open.right.readSync(sandbox.path('pids', '/tasks')))).toBe('ok')
  })
})
