import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { expect, it } from 'vitest'
import { main } from '../src/main.ts'

const run = async (argv: ReadonlyArray<string>): Promise<{ code: number; out: string }> => {
  const chunks: Array<string> = []
  const write = process.stdout.write.bind(process.stdout)
  process.stdout.write = ((chunk: string) => chunks.push(chunk) > 0) as typeof process.stdout.write
  try {
    return { code: await main(argv), out: chunks.join('') }
  } finally {
    process.stdout.write = write
  }
}

it('cgtx demo moves a process, refuses a move in prepareSpin, rolls it back and prints the timeline', async () => {
  const { code, out } = await run(['demo'])
  expect(code).toBe(0)
  expect(out).toMatch(/moves both threads at once\n[\s\S]*→ ok/)
  expect(out).toMatch(/→ refused: attach process \d+ to unified:\/web: ENOSPC \(seats\)/)
  expect(out).toMatch(/unchanged: the failed move left no trace\n {2}→ ok: "\d+\\n"/)
  expect(out).toMatch(/seats\s+prepareSpin\s+✗ {2}ENOSPC/)
  expect(out).toMatch(/journal\s+abortSleep\s+✓/)
})

it('cgtx help lists the commands; an unknown command exits 2', async () => {
  const help = await run(['help'])
  expect(help.code).toBe(0)
  for (const command of ['demo', 'check', 'replay', 'bench']) expect(help.out).toContain(`  ${command} `)
  expect((await run(['frobnicate'])).code).toBe(2)
})

it('cgtx bench without a name lists the benchmarks of bench/', () => {
  const bin = join(import.meta.dirname, '..', 'bin', 'cgtx.mjs')
  const listed = spawnSync(process.execPath, [bin, 'bench'], { encoding: 'utf8' })
  expect(listed.status).toBe(0)
  expect(listed.stderr).toMatch(/available: .*attach.*subsystems.*workqueue/)
})
