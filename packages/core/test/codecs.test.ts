import * as E from 'fp-ts/lib/Either.js'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { AttachRequest, CgroupPath, decode } from '@cgtx/core'
import { decodeAttachRequestFast } from '../src/codecs.ts'

// Inputs that are valid, nearly valid, and anything at all.
const name = fc.oneof(fc.constantFrom('a', 'b', '.', '..', '...', 'x y', 'a\nb', ''), fc.string({ maxLength: 4 }))
const path = fc.oneof(fc.constant('/'), fc.array(name, { minLength: 1, maxLength: 3 }).map((names) => `/${names.join('/')}`), fc.string({ maxLength: 6 }))
const ref = fc.record({ hierarchy: fc.oneof(fc.constantFrom('h', 'cpu,cpuacct', 'bad/name', ''), fc.string({ maxLength: 3 })), path }, { requiredKeys: [] })
const request = fc.record(
  {
    mode: fc.constantFrom('thread', 'process', 'all', 'other'),
    pid: fc.oneof(fc.integer({ min: -2, max: 5_000_000 }), fc.double(), fc.string({ maxLength: 2 })),
    from: path,
    to: fc.oneof(ref, fc.array(ref, { maxLength: 3 }), fc.anything()),
    extra: fc.anything(),
  },
  { requiredKeys: [] },
)

describe('codecs', () => {
  it('the attach fast path accepts exactly what the AttachRequest codec accepts, with the same result', () => {
    fc.assert(
      fc.property(fc.oneof(request, fc.anything()), (input) => {
        const slow = decode(AttachRequest, input, 'request')
        const fast = decodeAttachRequestFast(input)
        expect(fast !== undefined).toBe(E.isRight(slow))
        if (fast !== undefined && E.isRight(slow)) expect(fast).toEqual(slow.right)
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
