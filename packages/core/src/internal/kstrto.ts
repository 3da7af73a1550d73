/**
 * The kernel's integer parsing (`kstrtoint` / `kstrtoull` family) and
 * `strstrip`, so control-file writes accept and refuse exactly what Linux does.
 */

/** Linux `isspace`: space, \t, \n, \v, \f, \r. */
const SPACE = /^[ \t\n\v\f\r]+|[ \t\n\v\f\r]+$/g

/** `strstrip`: trims leading and trailing whitespace. */
export const strstrip = (value: string): string => value.replace(SPACE, '')

/**
 * `kstrtoll` with base 0 (auto: `0x` hex, leading `0` octal, else decimal),
 * one optional trailing newline, an optional sign. Returns the value as a
 * bigint, or the errno: EINVAL for junk, ERANGE for overflow of 64 bits.
 */
export const kstrtoll = (value: string, base: 0 | 10 = 10): bigint | 'EINVAL' | 'ERANGE' => {
  // Callers from plain JavaScript may pass anything; the kernel only ever sees bytes.
  if (typeof value !== 'string') return 'EINVAL'
  const text = value.endsWith('\n') ? value.slice(0, -1) : value
  const match = /^([+-]?)(.*)$/s.exec(text)!
  const sign = match[1] === '-' ? -1n : 1n
  const digits = match[2]!
  let parsed: bigint
  if (base === 0 && /^0[xX][0-9a-fA-F]+$/.test(digits)) parsed = BigInt(digits)
  else if (base === 0 && /^0[0-7]+$/.test(digits)) parsed = BigInt(`0o${digits.slice(1)}`)
  else if (/^[0-9]+$/.test(digits)) parsed = BigInt(digits)
  else return 'EINVAL'
  if (sign > 0 && parsed > 0xffff_ffff_ffff_ffffn) return 'ERANGE'
  const signed = sign * parsed
  if (match[1] !== '' && (signed > 0x7fff_ffff_ffff_ffffn || signed < -0x8000_0000_0000_0000n)) return 'ERANGE'
  return signed
}

/** `kstrtoint`: like {@link kstrtoll} but limited to a 32-bit int. */
export const kstrtoint = (value: string, base: 0 | 10 = 10): number | 'EINVAL' | 'ERANGE' => {
  const parsed = kstrtoll(value, base)
  if (typeof parsed === 'string') return parsed
  if (parsed > 0x7fff_ffffn || parsed < -0x8000_0000n) return 'ERANGE'
  return Number(parsed)
}
