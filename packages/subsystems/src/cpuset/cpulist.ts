/**
 * The kernel's CPU / node list syntax (`bitmap_parselist` in
 * lib/bitmap-str.c) and its canonical print form (`%*pbl`). Regions are
 * `N`, `A-B` or `A-B:used/group`, separated by commas or whitespace; `N`
 * stands for the last bit and `all` for every bit; a newline ends the
 * string. Errors are the parser's: EINVAL for bad syntax, `start > end` or a
 * bad stride, ERANGE for a bit at or beyond the mask width, EOVERFLOW for a
 * number that does not fit 32 bits. The canonical form is ascending, runs
 * merged, `a-b` only when `b > a`; the empty set prints as an empty line.
 *
 * @module cpulist
 */
import * as t from 'io-ts'
import { strstrip, type Errno } from '@cgtx/core'
import { failWith } from '../defineSubsystem.ts'

/** A set of CPU or node numbers, ascending and without duplicates. */
export type CpuList = ReadonlyArray<number>

const isSpace = (c: string | undefined): boolean => c === ' ' || c === '\t' || c === '\n' || c === '\v' || c === '\f' || c === '\r'
const endOfStr = (c: string | undefined): boolean => c === undefined || c === '\0' || c === '\n'
const endOfRegionSep = (c: string | undefined): boolean => isSpace(c) || c === ','
const endOfRegion = (c: string | undefined): boolean => endOfRegionSep(c) || endOfStr(c)

interface Region {
  start: number
  end: number
  off: number
  group: number
}

// bitmap_getnum: 'N' is the last bit; else decimal digits that must fit 32 bits.
const getNum = (text: string, at: number, lastBit: number): { readonly value: number; readonly at: number } | Errno => {
  if (text[at] === 'N') return { value: lastBit, at: at + 1 }
  let end = at
  while (end < text.length && text[end]! >= '0' && text[end]! <= '9') end++
  if (end === at) return 'EINVAL'
  const value = Number(text.slice(at, end))
  if (!Number.isSafeInteger(value) || value > 0xffff_ffff) return 'EOVERFLOW'
  return { value, at: end }
}

/**
 * Parses a list for a mask `nbits` wide, exactly as `bitmap_parselist`
 * does (the caller strips the write first, as cpuset does).
 */
export const parseList = (text: string, nbits: number): CpuList | Errno => {
  const bits = new Set<number>()
  const lastBit = nbits - 1
  let at = 0
  for (;;) {
    // bitmap_find_region: skip separators; stop at the end of the string.
    while (at < text.length && endOfRegionSep(text[at])) at++
    if (endOfStr(text[at])) break
    const region: Region = { start: 0, end: 0, off: 0, group: 0 }
    let pattern = false
    if (text.slice(at, at + 3).toLowerCase() === 'all') {
      region.start = 0
      region.end = lastBit
      at += 3
    } else {
      const start = getNum(text, at, lastBit)
      if (typeof start === 'string') return start
      region.start = start.value
      at = start.at
      if (endOfRegion(text[at])) region.end = region.start
      else {
        if (text[at] !== '-') return 'EINVAL'
        const end = getNum(text, at + 1, lastBit)
        if (typeof end === 'string') return end
        region.end = end.value
        at = end.at
      }
    }
    if (!endOfRegion(text[at])) {
      if (text[at] !== ':') return 'EINVAL'
      const off = getNum(text, at + 1, lastBit)
      if (typeof off === 'string') return off
      if (text[off.at] !== '/') return 'EINVAL'
      const group = getNum(text, off.at + 1, lastBit)
      if (typeof group === 'string') return group
      region.off = off.value
      region.group = group.value
      at = group.at
      pattern = true
    }
    if (!pattern) {
      region.off = region.end + 1
      region.group = region.end + 1
    }
    // bitmap_check_region
    if (region.start > region.end || region.group === 0 || region.off > region.group) return 'EINVAL'
    if (region.end >= nbits) return 'ERANGE'
    for (let bit = region.start; bit <= region.end; bit++) {
      if ((bit - region.start) % region.group < region.off) bits.add(bit)
    }
    if (!pattern && endOfStr(text[at])) break
  }
  return [...bits].sort((a, b) => a - b)
}

/** The canonical text of a list (no newline): `0-3,7`, empty for the empty set. */
export const formatList = (list: CpuList): string => {
  const parts: Array<string> = []
  for (let i = 0; i < list.length; ) {
    let j = i
    while (j + 1 < list.length && list[j + 1] === list[j]! + 1) j++
    parts.push(j === i ? `${list[i]}` : `${list[i]}-${list[j]}`)
    i = j + 1
  }
  return parts.join(',')
}

/** `0..n-1`. */
export const range = (n: number): CpuList => Array.from({ length: n }, (_, i) => i)

/** Elements of `a` also in `b`. */
export const intersect = (a: CpuList, b: CpuList): CpuList => {
  const other = new Set(b)
  return a.filter((x) => other.has(x))
}

/** Every element of `a` is in `b`. */
export const isSubset = (a: CpuList, b: CpuList): boolean => {
  const other = new Set(b)
  return a.every((x) => other.has(x))
}

/** `a` and `b` share an element. */
export const overlaps = (a: CpuList, b: CpuList): boolean => intersect(a, b).length > 0

/** Same elements. */
export const sameList = (a: CpuList, b: CpuList): boolean => a.length === b.length && a.every((x, i) => x === b[i])

/**
 * The codec of a `cpuset.cpus` / `cpuset.mems` write for a mask `nbits`
 * wide: the write is stripped, an empty string is the empty set, anything
 * else goes through {@link parseList}. Encodes to the canonical form plus newline.
 */
export const listCodec = (name: string, nbits: number): t.Type<CpuList, string, string> =>
  new t.Type<CpuList, string, string>(
    name,
    (u): u is CpuList => Array.isArray(u) && u.every((x, i) => Number.isInteger(x) && x >= 0 && x < nbits && (i === 0 || x > u[i - 1])),
    (input, context) => {
      const text = strstrip(input)
      if (text === '') return t.success([])
      const parsed = parseList(text, nbits)
      return typeof parsed === 'string' ? failWith(parsed, input, context) : t.success(parsed)
    },
    (list) => `${formatList(list)}\n`,
  )
