/** `cgtx replay` on the example scenarios: on the model alone, and on both sides, where they must agree. */
import { readdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { main } from '../packages/cli/src/main.ts'

const scenarios = join(dirname(fileURLToPath(import.meta.url)), '..', 'examples', 'scenarios')

const capture = async (argv: ReadonlyArray<string>): Promise<{ code: number; out: string }> => {
  const lines: Array<string> = []
  const write = process.stdout.write.bind(process.stdout)
  process.stdout.write = ((chunk: string) => (lines.push(String(chunk)), true)) as typeof process.stdout.write
  try {
    const code = await main(argv)
    return { code, out: lines.join('') }
  } finally {
    process.stdout.write = write
  }
}

describe('cgtx replay', () => {
  for (const file of readdirSync(scenarios).filter((name) => name.endsWith('.json'))) {
    it(`${file}: model and kernel agree, side by side`, async () => {
      const { code, out } = await capture(['replay', join(scenarios, file), '--on', 'both'])
      expect(out).toMatch(/^kernel \S+; \d+ steps on both/)
      expect(out).toContain('model and kernel agree on every step')
      expect(out).not.toMatch(/^≠/m)
      expect(code).toBe(0)
    })
  }

  it('runs on the model alone and refuses bad arguments with the usage', async () => {
    const model = await capture(['replay', join(scenarios, 'procs-vs-tasks.json'), '--on', 'model'])
    expect(model.code).toBe(0)
    expect(model.out).toMatch(/#\s+step\s+model\n/)
    expect((await capture(['replay'])).code).toBe(2)
    expect((await capture(['replay', 'x.json', '--on', 'moon'])).out).toContain('on: expected Side')
    expect((await capture(['replay', '/nonexistent.json'])).out).toContain('cannot read')
  })
})
