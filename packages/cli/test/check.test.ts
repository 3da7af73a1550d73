import { describe, expect, it } from 'vitest'
import { runCheck } from '../src/check.ts'

const run = async (args: ReadonlyArray<string>) => {
  const lines: Array<string> = []
  const code = await runCheck(args, (line) => void lines.push(line))
  return { code, out: lines.join('\n') }
}

describe('cgtx check', () => {
  it('runs the kit on a plugin module and prints one line per law', async () => {
    const { code, out } = await run(['examples/io-tokens/src/kit.ts', '--runs', '5'])
    expect(out).toContain('checking io_tokens')
    expect(out).toContain('✓ protocol: abort restores an equivalent state (5 runs')
    expect(out).toContain('io_tokens: all 15 laws hold')
    expect(code).toBe(0)
  })

  it('checks a built-in controller, optionally one law', async () => {
    const { code, out } = await run(['builtin:cpuset', '--runs', '3', '--only', 'codecs round-trip'])
    expect(out.split('\n')).toEqual(['checking cpuset (builtin:cpuset)', expect.stringMatching(/^✓ codecs: codecs round-trip \(3 runs, seed -?\d+\)$/), 'cpuset: all 1 laws hold'])
    expect(code).toBe(0)
  })

  it('fails a broken controller with exit code 1, naming the law, the seed, the path and the shrunk operations', async () => {
    const { code, out } = await run(['packages/cli/test/fixtures/forgets-undo.ts', '--runs', '200', '--only', 'abort restores an equivalent state'])
    expect(code).toBe(1)
    expect(out).toContain('✗ protocol: abort restores an equivalent state')
    expect(out).toMatch(/seed: -?\d+ {3}path: [\d:]+/)
    expect(out).toMatch(/shrunk operations:\n(.|\n)*1\. attach/)
    expect(out).toContain('forgetful: 1 of 1 laws failed')
    const replay = /replay: cgtx check (\S+) --seed (-?\d+) --path ([\d:]+) --only "(.+)"/.exec(out)!
    const again = await run([replay[1]!, '--seed', replay[2]!, '--path', replay[3]!, '--only', replay[4]!])
    expect(again.code).toBe(1)
    expect(again.out).toContain(`seed: ${replay[2]}`)
  })

  it('refuses bad usage and modules without a kit with exit code 2', async () => {
    expect((await run([])).code).toBe(2)
    expect((await run(['x.ts', '--runs', '0'])).code).toBe(2)
    expect((await run(['x.ts', '--path', '1:2'])).out).toContain('--path needs --seed')
    expect((await run(['builtin:nope'])).out).toContain('no built-in controller "nope"')
    const noKit = await run(['packages/cli/src/check.ts'])
    expect(noKit.code).toBe(2)
    expect(noKit.out).toContain('exports no kit configuration')
  })
})
