import * as E from 'fp-ts/lib/Either.js'
import { describe, expect, it } from 'vitest'
import { builtinSubsystems, cpu, cpuset } from '@cgtx/subsystems'

describe('controller factories decode their options', () => {
  it('builds controllers from good options', () => {
    expect(E.isRight(cpuset({ cpus: 8, mems: 2 }))).toBe(true)
    expect(E.isRight(cpu({ rtGroupSched: true }))).toBe(true)
    const all = builtinSubsystems({ cpus: 2 })
    expect(E.isRight(all) && all.right.map((subsystem) => subsystem.name)).toEqual(['cpuset', 'cpu', 'memory', 'freezer', 'pids'])
  })

  it('refuses malformed options with a BadArgument naming the field and the value', () => {
    expect(cpuset({ cpus: 0 })).toEqual(E.left(expect.objectContaining({ _tag: 'BadArgument', field: 'options.cpus', value: 0 })))
    expect(cpuset({ mems: 2.5 })).toEqual(E.left(expect.objectContaining({ _tag: 'BadArgument', field: 'options.mems', value: 2.5 })))
    expect(cpu({ rtGroupSched: 'yes' })).toEqual(E.left(expect.objectContaining({ _tag: 'BadArgument', field: 'options.rtGroupSched' })))
    expect(cpu({ clock: {} })).toEqual(E.left(expect.objectContaining({ _tag: 'BadArgument' })))
    expect(builtinSubsystems({ cpus: -1 })).toEqual(E.left(expect.objectContaining({ _tag: 'BadArgument', field: 'options.cpus', value: -1 })))
    expect(builtinSubsystems(null)).toEqual(E.left(expect.objectContaining({ _tag: 'BadArgument' })))
  })
})
