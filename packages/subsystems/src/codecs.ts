/**
 * Codecs for control-file writes in the kernel's formats: from the raw
 * string `write(2)` passes (trailing newline included) to a value, failing
 * with the errno the kernel's parser returns. Each also encodes a value back
 * to the canonical text the file reads, so `decode ∘ encode = id`.
 *
 * @module codecs
 */
import * as t from 'io-ts'
import { kstrtoll, strstrip } from '@cgtx/core'
import { failWith } from './defineSubsystem.ts'

/** A codec from a control-file write to a value, with the value's canonical text as its encoding. */
export type FileCodec<A> = t.Type<A, string, string>

/**
 * Parses `text` as the kernel's `write_u64` files do (`kstrtoull(buf, 0)`,
 * not stripped: one trailing newline is all the whitespace accepted):
 * EINVAL for junk or a minus sign, ERANGE above 2^64-1.
 */
export const parseU64 = (text: string): bigint | 'EINVAL' | 'ERANGE' => (text.startsWith('-') ? 'EINVAL' : kstrtoll(text, 0))

/** Parses `text` as the kernel's `write_s64` files do (`kstrtoll(buf, 0)`, not stripped). */
export const parseS64 = (text: string): bigint | 'EINVAL' | 'ERANGE' => kstrtoll(text, 0)

/**
 * An unsigned 64-bit write (`write_u64` handlers; see {@link parseU64}), as a JS number; values
 * above 2^53 are refused with ERANGE since they cannot be represented.
 */
export const u64: FileCodec<number> = new t.Type<number, string, string>(
  'u64',
  (u): u is number => typeof u === 'number' && Number.isSafeInteger(u) && u >= 0,
  (input, context) => {
    const parsed = parseU64(input)
    if (typeof parsed === 'string') return failWith(parsed, input, context)
    if (parsed > BigInt(Number.MAX_SAFE_INTEGER)) return failWith('ERANGE', input, context)
    return t.success(Number(parsed))
  },
  (value) => `${value}\n`,
)

/** A signed 64-bit write (`write_s64` handlers), as a safe JS integer. */
export const s64: FileCodec<number> = new t.Type<number, string, string>(
  's64',
  (u): u is number => typeof u === 'number' && Number.isSafeInteger(u),
  (input, context) => {
    const parsed = parseS64(input)
    if (typeof parsed === 'string') return failWith(parsed, input, context)
    if (parsed > BigInt(Number.MAX_SAFE_INTEGER) || parsed < BigInt(Number.MIN_SAFE_INTEGER)) return failWith('ERANGE', input, context)
    return t.success(Number(parsed))
  },
  (value) => `${value}\n`,
)

/**
 * `max` or an integer in `0..maximum` (pids.max): `max` is `Infinity`;
 * `kstrtoll` errors are passed through; out of range is EINVAL.
 */
export const limitOrMax = (name: string, maximum: number): FileCodec<number> =>
  new t.Type<number, string, string>(
    name,
    (u): u is number => u === Number.POSITIVE_INFINITY || (typeof u === 'number' && Number.isSafeInteger(u) && u >= 0 && u <= maximum),
    (input, context) => {
      const text = strstrip(input)
      if (text === 'max') return t.success(Number.POSITIVE_INFINITY)
      const parsed = kstrtoll(text, 0)
      if (typeof parsed === 'string') return failWith(parsed, input, context)
      if (parsed < 0n || parsed > BigInt(maximum)) return failWith('EINVAL', input, context)
      return t.success(Number(parsed))
    },
    (value) => (value === Number.POSITIVE_INFINITY ? 'max\n' : `${value}\n`),
  )

/** Bytes in a page: memory limits are kept in whole pages, like the kernel's page_counter. */
export const PAGE_SIZE = 4096

/** The largest limit a page_counter holds, in bytes, as text (what v1 reads for "unlimited"; beyond 2^53). */
export const PAGE_COUNTER_MAX_BYTES = '9223372036854771712'

const SUFFIX: Readonly<Record<string, number>> = { k: 2 ** 10, K: 2 ** 10, m: 2 ** 20, M: 2 ** 20, g: 2 ** 30, G: 2 ** 30, t: 2 ** 40, T: 2 ** 40, p: 2 ** 50, P: 2 ** 50, e: 2 ** 60, E: 2 ** 60 }

/**
 * A byte count as `page_counter_memparse` reads it: the unlimited keyword
 * (`max` on v2, `-1` on v1), or a number with an optional K/M/G/T/P/E
 * suffix; junk is EINVAL. The result is rounded down to whole pages
 * (`Infinity` for the keyword or anything at or above the page_counter
 * maximum). Unlimited reads back as `max` on v2 and as the page_counter
 * maximum in bytes on v1.
 */
export const memoryBytes = (name: string, unlimited: 'max' | '-1'): FileCodec<number> =>
  new t.Type<number, string, string>(
    name,
    (u): u is number => u === Number.POSITIVE_INFINITY || (typeof u === 'number' && Number.isSafeInteger(u) && u >= 0 && u % PAGE_SIZE === 0),
    (input, context) => {
      const text = strstrip(input)
      if (text === unlimited) return t.success(Number.POSITIVE_INFINITY)
      // memparse: simple_strtoull with base 0, then an optional suffix letter; anything left is junk.
      const match = /^(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)([kKmMgGtTpPeE]?)$/.exec(text)
      if (match === null) return failWith('EINVAL', input, context)
      const digits = match[1]!
      const base = digits.startsWith('0x') || digits.startsWith('0X') ? BigInt(digits) : digits.length > 1 && digits.startsWith('0') ? BigInt(`0o${digits.slice(1)}`) : BigInt(digits)
      const bytes = base * BigInt(SUFFIX[match[2]!] ?? 1)
      if (bytes >= BigInt(PAGE_COUNTER_MAX_BYTES) || bytes > BigInt(Number.MAX_SAFE_INTEGER)) return t.success(Number.POSITIVE_INFINITY)
      return t.success(Number((bytes / BigInt(PAGE_SIZE)) * BigInt(PAGE_SIZE)))
    },
    (value) => (value === Number.POSITIVE_INFINITY ? (unlimited === 'max' ? 'max\n' : `${PAGE_COUNTER_MAX_BYTES}\n`) : `${value}\n`),
  )

/** One of a fixed set of keywords (after strstrip); anything else is EINVAL. */
export const keyword = <K extends string>(name: string, words: ReadonlyArray<K>): FileCodec<K> =>
  new t.Type<K, string, string>(
    name,
    (u): u is K => typeof u === 'string' && (words as ReadonlyArray<string>).includes(u),
    (input, context) => {
      const text = strstrip(input)
      return (words as ReadonlyArray<string>).includes(text) ? t.success(text as K) : failWith('EINVAL', input, context)
    },
    (value) => `${value}\n`,
  )
