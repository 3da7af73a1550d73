/**
 * What other operations see while an attach waits in prepareSleep (a gate
 * subsystem after the controller holds it there): memory's v1 move-charge
 * precharge and charges made meanwhile, and cpuset's attach-in-progress
 * rule. Usage at every level is the sum of the charges below it plus the
 * precharges in flight below it, before, during and after.
 */
import * as E from 'fp-ts/lib/Either.js'
import { describe, expect, it } from 'vitest'
import { Host, VirtualCgroupFs, type Subsystem } from '@cgtx/core'
import { builtinSubsystems, type MemorySubsystem } from '../src/index.ts'
import { errno, right } from './helpers.ts'

// A subsystem whose prepareSleep, once armed, waits until the test opens (or fails) the gate.
const gated = () => {
  let armed = false
  let open: (ok: boolean) => void = () => undefined
  const gate: Subsystem<null> = {
    name: 'gate',
    createState: () => null,
    prepareSleep: (ctx) => {
      if (!armed) return undefined
      armed = false
      return new Promise((resolve) => {
        open = (ok) => resolve(ok ? undefined : E.left(ctx.refuse('EBUSY', 'gate closed')))
      })
    },
  }
  return { gate, arm: () => void (armed = true), open: (ok: boolean) => open(ok) }
}

const hostWith = (mount: string, controller: string) => {
  const { gate, arm, open } = gated()
  const builtins = right(builtinSubsystems({ cpus: 2 }))
  const host = right(Host.create({ subsystems: [...builtins, gate], hierarchies: [{ name: mount, subsystems: [controller, 'gate'] }], cpus: 2 }))
  return { host, fs: new VirtualCgroupFs(host), memory: builtins[2] as MemorySubsystem, arm, open }
}

// Lets pending promise callbacks run.
const settle = () => new Promise((resolve) => setTimeout(resolve, 0))

describe('memory v1 move-charge while the move is in flight', () => {
  const prepare = () => {
    const world = hostWith('memory', 'memory')
    const { host, fs, memory, arm } = world
    for (const path of ['/p', '/p/src', '/p/dst']) right(fs.mkdirSync(`/memory${path}`))
    right(fs.writeSync('/memory/p/dst/memory.move_charge_at_immigrate', '1'))
    const task = host.spawn()
    right(fs.writeSync('/memory/p/src/cgroup.procs', `${task.tid}`))
    const first = right(memory.charge(task, 8192))
    const usage = () => ['/p', '/p/src', '/p/dst'].map((path) => right(fs.readSync(`/memory${path}/memory.usage_in_bytes`)).trim())
    arm()
    const moving = host.attach({ mode: 'process', pid: task.tid, to: { hierarchy: 'memory', path: '/p/dst' } })()
    return { ...world, task, first, usage, moving }
  }

  it('precharges the destination, keeps a charge made meanwhile where it was made, and moves only what was precharged', async () => {
    const { memory, task, usage, moving, open } = prepare()
    await settle()
    // In flight: the destination chain holds the precharge (the common parent counts both, as in the kernel).
    expect(usage()).toEqual(['16384', '8192', '8192'])
    const meanwhile = right(memory.charge(task, 4096))
    expect(usage()).toEqual(['20480', '12288', '8192'])
    open(true)
    right(await moving)
    expect(usage()).toEqual(['12288', '4096', '8192'])
    expect(memory.chargesOf(task).map((charge) => [charge.bytes, charge.css.cgroup.path])).toEqual([[8192, '/p/dst'], [4096, '/p/src']])
    right(memory.uncharge(meanwhile))
    expect(usage()).toEqual(['8192', '0', '8192'])
  })

  it('releases the precharge on abort and gives back precharge a charge returned meanwhile no longer needs', async () => {
    const aborted = prepare()
    await settle()
    aborted.open(false)
    expect(errno(await aborted.moving)).toBe('EBUSY')
    expect(aborted.usage()).toEqual(['8192', '8192', '0'])

    const returned = prepare()
    await settle()
    right(returned.memory.uncharge(returned.first))
    expect(returned.usage()).toEqual(['8192', '0', '8192'])
    returned.open(true)
    right(await returned.moving)
    expect(returned.usage()).toEqual(['0', '0', '0'])
  })
})

describe('cpuset while an attach is in flight', () => {
  it('refuses to empty a destination with an attach in progress (ENOSPC), and allows it once the attach aborted', async () => {
    const { host, fs, arm, open } = hostWith('cpuset', 'cpuset')
    right(fs.mkdirSync('/cpuset/dst'))
    right(fs.writeSync('/cpuset/dst/cpuset.cpus', '0'))
    right(fs.writeSync('/cpuset/dst/cpuset.mems', '0'))
    const task = host.spawn()
    arm()
    const moving = host.attach({ mode: 'process', pid: task.tid, to: { hierarchy: 'cpuset', path: '/dst' } })()
    await settle()
    expect(errno(fs.writeSync('/cpuset/dst/cpuset.cpus', '\n'))).toBe('ENOSPC')
    expect(errno(fs.writeSync('/cpuset/dst/cpuset.mems', '\n'))).toBe('ENOSPC')
    right(fs.writeSync('/cpuset/dst/cpuset.cpus', '1'))
    open(false)
    expect(errno(await moving)).toBe('EBUSY')
    right(fs.writeSync('/cpuset/dst/cpuset.cpus', '\n'))
  })

  it('v1 clone_children copies the parent’s masks into a new child', () => {
    const { fs } = hostWith('cpuset', 'cpuset')
    right(fs.mkdirSync('/cpuset/ccp'))
    right(fs.writeSync('/cpuset/ccp/cpuset.cpus', '1'))
    right(fs.writeSync('/cpuset/ccp/cpuset.mems', '0'))
    right(fs.writeSync('/cpuset/ccp/cgroup.clone_children', '1'))
    right(fs.mkdirSync('/cpuset/ccp/k'))
    expect(right(fs.readSync('/cpuset/ccp/k/cpuset.cpus'))).toBe('1\n')
    expect(right(fs.readSync('/cpuset/ccp/k/cpuset.mems'))).toBe('0\n')
    right(fs.mkdirSync('/cpuset/ccp/k/g'))
    expect(right(fs.readSync('/cpuset/ccp/k/g/cpuset.cpus'))).toBe('1\n')
  })
})
