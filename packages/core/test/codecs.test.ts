import * as E from 'fp-ts/lib/Either.js'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { AttachRequest, CgroupPath, CgroupRef, decode, Host } from '@cgtx/core'
import { resolveKnown } from '../src/internal/migration.ts'

// Inputs that are valid, nearly valid, and anything at all; paths and refs
// mostly name the cgroups the test host has, or nearly.
const name = fc.oneof(fc.constantFrom('a', 'b', '.', '..', '...', 'x y', 'a\nb', ''), fc.string({ maxLength: 4 }))
const existing = ['/', '/a', '/a/b', '/b', '/...', '/.a']
const path = fc.oneof(
  fc.constantFrom(...existing),
  fc.constantFrom('a', 'xa', '/a/', '//a', '/a//b', '/c', '/a/./b', ''),
  fc.array(name, { minLength: 1, maxLength: 3 }).map((names) => `/${names.join('/')}`),
  fc.string({ maxLength: 6 }),
)
const hierarchy = fc.oneof(fc.constantFrom('h', 'cpu,cpuacct', 'h ', 'bad/name', ''), fc.string({ maxLength: 3 }))
const ref = fc.oneof(fc.record({ hierarchy: fc.constantFrom('h', 'cpu,cpuacct'), path: fc.constantFrom(...existing) }), fc.record({ hierarchy, path }, { requiredKeys: [] }))
const request = fc.record(
  {
    mode: fc.constantFrom('thread', 'process', 'all', 'other'),
    pid: fc.oneof(fc.integer({ min: 1, max: 100 }), fc.integer({ min: -2, max: 5_000_000 }), fc.double(), fc.string({ maxLength: 2 })),
    from: path,
    to: fc.oneof(ref, fc.array(ref, { maxLength: 3 }), fc.anything()),
    extra: fc.anything(),
  },
  { requiredKeys: ['mode', 'to'] },
)

describe('codecs', () => {
  it('attach requests naming existing cgroups skip the codec: accepted exactly when the codec accepts them, resolved alike', () => {
    const host = (Host.create({ hierarchies: [{ name: 'h' }, { name: 'cpu,cpuacct' }] }) as E.Right<Host>).right
    for (const at of ['/a', '/a/b', '/b', '/...', '/.a']) for (const hierarchy of ['h', 'cpu,cpuacct']) host.mkdirSync({ hierarchy, path: at })
    fc.assert(
      fc.property(fc.oneof(request, fc.anything()), (input) => {
        const slow = decode(AttachRequest, input, 'request')
        const fast = resolveKnown(host, input, false)
        if (E.isLeft(slow)) {
          expect(fast).toBeUndefined()
          return
        }
        const decoded = slow.right
        const refs = Array.isArray(decoded.to) ? decoded.to : [decoded.to]
        const destinations = refs.map((ref) => host.hierarchy(ref.hierarchy)?.lookup(ref.path))
        const resolvable =
          refs.length > 0 &&
          destinations.every((cgroup) => cgroup !== undefined) &&
          new Set(refs.map((ref) => ref.hierarchy)).size === refs.length &&
          (decoded.mode !== 'all' || destinations[0]!.hierarchy.lookup(decoded.from) !== undefined)
        expect(fast !== undefined).toBe(resolvable)
        if (fast === undefined) return
        expect(fast.mode).toBe(decoded.mode)
        expect(fast.subject).toBe(decoded.mode === 'all' ? decoded.from : decoded.pid)
        expect(fast.destinations).toEqual(destinations)
      }),
      { numRuns: 3000 },
    )
  })

  it('findCgroup finds exactly the live cgroups of refs the CgroupRef codec accepts', () => {
    const host = (Host.create({ hierarchies: [{ name: 'h' }, { name: 'cpu,cpuacct' }] }) as E.Right<Host>).right
    for (const at of ['/a', '/a/b', '/b', '/...', '/.a']) host.mkdirSync({ hierarchy: 'h', path: at })
    fc.assert(
      fc.property(fc.oneof(ref, fc.anything()), (input) => {
        const decoded = decode(CgroupRef, input, 'ref')
        const expected = E.isRight(decoded) ? host.hierarchy(decoded.right.hierarchy)?.lookup(decoded.right.path) : undefined
        expect(host.findCgroup(input)).toBe(expected)
      }),
      { numRuns: 2000 },
    )
  })

  it('CgroupPath accepts / and names of 1–255 characters without /, newline, NUL, . or ..', () => {
    for (const good of ['/', '/a', '/a/b', '/.a', '/...', `/${'x'.repeat(255)}`]) expect(CgroupPath.is(good)).toBe(true)
    for (const bad of ['', 'a', '/a/', '//', '/.', '/..', '/a/./b', '/a\nb', `/${'x'.repeat(256)}`]) expect(CgroupPath.is(bad)).toBe(false)
  })

  it('a decoding failure names the innermost field and the value found there', () => {
    const result = decode(AttachRequest, { mode: 'thread', pid: 3, to: { hierarchy: 'h', path: 'relative' } }, 'request')
    expect(result).toEqual(E.left(expect.objectContaining({ _tag: 'BadArgument', field: 'request.to.path', value: 'relative' })))
  })
})
