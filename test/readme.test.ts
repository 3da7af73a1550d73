import { join } from 'node:path'
import { expect, it } from 'vitest'
import { runMarkdownExamples, tsBlocks } from './support/readmeExamples.ts'

it('the README tour runs', async () => {
  const readme = join(import.meta.dirname, '..', 'README.md')
  expect(tsBlocks(readme).length).toBeGreaterThan(0)
  await runMarkdownExamples(readme)
})
