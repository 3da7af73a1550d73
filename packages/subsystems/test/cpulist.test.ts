/**
 * The CPU-list codec: any set prints in the kernel's canonical form and
 * parses back to itself; any text the parser accepts reads back (canonical
 * form) as text that parses to the same set; and a brute-force reading of
 * the grammar agrees with the parser on generated region lists.
 */
import * as fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { formatList, listCodec, parseList } from '../src/index.ts'

const WIDTH = 16

// A region in the kernel's grammar, with the set it stands for (or the errno).
const region = fc.oneof(
  fc.nat(WIDTH + 2).map((n) => ({ text: `${n}`, bits: n < WIDTH ? [n] : 'ERANGE' })),
  fc.tuple(fc.nat(WIDTH + 2), fc.nat(WIDTH + 2)).map(([a, b]) => ({
    text: `${a}-${b}`,
    bits: a > b ? 'EINVAL' : b >= WIDTH ? 'ERANGE' : Array.from({ length: b - a + 1 }, (_, i) => a + i),
  })),
  fc.tuple(fc.nat(WIDTH - 1), fc.nat(WIDTH - 1), fc.nat(4), fc.integer({ min: 1, max: 5 })).map(([a, b, used, group]) => {
    const [lo, hi] = a <= b ? [a, b] : [b, a]
    return {
      text: `${lo}-${hi}:${used}/${group}`,
      bits: used > group ? 'EINVAL' : Array.from({ length: hi - lo + 1 }, (_, i) => lo + i).filter((bit) => (bit - lo) % group < used),
    }
  }),
  fc.constant({ text: 'N', bits: [WIDTH - 1] }),
  fc.constant({ text: 'all', bits: Array.from({ length: WIDTH }, (_, i) => i) }),
)
const separator = fc.constantFrom(',', ' ,', ', ', ',,')

describe('cpu list codec', () => {
  it('prints any set canonically and parses it back', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.nat(WIDTH - 1)), (set) => {
        const sorted = [...set].sort((a, b) => a - b)
        const text = formatList(sorted)
        expect(parseList(text, WIDTH)).toEqual(sorted)
        expect(text).not.toMatch(/(\d+)-\1\b/)
      }),
      { numRuns: 200 },
    )
  })

  it('agrees with the grammar on generated region lists, and accepted text reads back canonically', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(region, separator), { minLength: 1, maxLength: 5 }), (regions) => {
        const text = regions.map(([r, sep], i) => (i === 0 ? r.text : `${sep}${r.text}`)).join('')
        const firstError = regions.find(([r]) => typeof r.bits === 'string')
        const parsed = parseList(text, WIDTH)
        if (firstError !== undefined) {
          expect(parsed).toBe(firstError[0].bits)
          return
        }
        const expected = [...new Set(regions.flatMap(([r]) => r.bits as ReadonlyArray<number>))].sort((a, b) => a - b)
        expect(parsed).toEqual(expected)
        const codec = listCodec('cpuset.cpus', WIDTH)
        const decoded = codec.decode(`${text}\n`)
        expect(decoded._tag).toBe('Right')
        if (decoded._tag === 'Right') expect(codec.decode(codec.encode(decoded.right))).toEqual(decoded)
      }),
      { numRuns: 300 },
    )
  })

  it('refuses numbers that overflow 32 bits with EOVERFLOW', () => {
    expect(parseList('4294967296', WIDTH)).toBe('EOVERFLOW')
    expect(parseList('0-99999999999', WIDTH)).toBe('EOVERFLOW')
  })
})
