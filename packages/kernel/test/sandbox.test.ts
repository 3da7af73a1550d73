import * as E from 'fp-ts/lib/Either.js'
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { rmdirRetrying } from '@cgtx/kernel'
import { requireSandbox, Sandbox } from '@cgtx/kernel/testing'

const here = dirname(fileURLToPath(import.meta.url))
const child = join(here, 'fixtures', 'sandbox-child.ts')
const tsx = join(here, '..', '..', '..', 'node_modules', '.bin', 'tsx')

const alive = (pid: number): boolean => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return !['Z', 'X'].includes(stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3))
  } catch {
    return false
  }
}

describe('Sandbox', () => {
  it('cleans up at process exit: thaws, kills by pid, removes every directory', async () => {
    const ran = spawnSync(tsx, [child], { encoding: 'utf8', timeout: 30_000 })
    expect(ran.status).toBe(0)
    const { prefix, pid } = JSON.parse(ran.stdout.trim().split('\n').pop()!) as { prefix: string; pid: number }
    expect(prefix).toMatch(/^cgtx-test-[0-9a-f]{8}$/)
    for (let i = 0; i < 100 && alive(pid); i++) await new Promise((resolve) => setTimeout(resolve, 10))
    expect(alive(pid)).toBe(false)
    expect(existsSync(`/sys/fs/cgroup/pids/${prefix}`)).toBe(false)
    expect(existsSync(`/sys/fs/cgroup/freezer/${prefix}`)).toBe(false)
  })

  it('refuses loudly where cgroupfs is not writable (as user nobody)', () => {
    const ran = spawnSync(tsx, [child], { encoding: 'utf8', timeout: 30_000, uid: 65534, gid: 65534, env: { ...process.env, HOME: '/tmp' } })
    expect(ran.status).toBe(3)
    expect(JSON.parse(ran.stdout.trim().split('\n').pop()!)).toEqual({ refused: expect.stringContaining('cgroupfs is not writable') })
  })

  it('requireSandbox throws a message that names the problem', async () => {
    const uid = process.getuid
    process.getuid = () => 65534
    try {
      await expect(requireSandbox()).rejects.toThrow(/REAL-KERNEL SUITE CANNOT RUN: .*not root/)
    } finally {
      process.getuid = uid
    }
  })

  it('cleans up after a test that failed half-way, and never touches memory', async () => {
    const created = await Sandbox.create({ hierarchies: ['pids', 'memory', 'cpuset'] })
    if (E.isLeft(created)) throw new Error(created.left.message)
    const sandbox = created.right
    expect(sandbox.hierarchies).toEqual(['pids', 'cpuset'])
    expect(existsSync(`/sys/fs/cgroup/memory/${sandbox.prefix}`)).toBe(false)
    expect(readFileSync(`/sys/fs/cgroup/cpuset/${sandbox.prefix}/cpuset.cpus`, 'utf8')).toBe(readFileSync('/sys/fs/cgroup/cpuset/cpuset.cpus', 'utf8'))
    const puppet = await sandbox.spawn()
    if (E.isLeft(puppet)) throw new Error(puppet.left.message)
    sandbox.fs.mkdirSync(sandbox.path('pids', '/a'))
    sandbox.fs.mkdirSync(sandbox.path('pids', '/a/b'))
    sandbox.fs.writeSync(sandbox.path('pids', '/a/b/cgroup.procs'), `${puppet.right.pid}`)
    const forked = await puppet.right.command('fork')
    sandbox.track(Number(forked.value))
    expect((await sandbox.cleanup()).leftovers).toEqual([])
    expect(puppet.right.running).toBe(false)
    expect(alive(Number(forked.value))).toBe(false)
    expect(existsSync(`/sys/fs/cgroup/pids/${sandbox.prefix}`)).toBe(false)
  })

  it('rmdir with the EBUSY policy succeeds once a killed task has left', async () => {
    const sandbox = await requireSandbox({ hierarchies: ['pids'] })
    try {
      const puppet = await sandbox.spawn()
      if (E.isLeft(puppet)) throw new Error(puppet.left.message)
      sandbox.fs.mkdirSync(sandbox.path('pids', '/dying'))
      sandbox.fs.writeSync(sandbox.path('pids', '/dying/cgroup.procs'), `${puppet.right.pid}`)
      puppet.right.kill()
      const removed = await rmdirRetrying(sandbox.fs, sandbox.path('pids', '/dying'), { attempts: 20, delayMs: 2, backoff: 1.5 })
      expect(removed.result).toEqual(E.right(undefined))
    } finally {
      expect((await sandbox.cleanup()).leftovers).toEqual([])
    }
  })
})
