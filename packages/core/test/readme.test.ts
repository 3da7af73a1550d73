import { join } from 'node:path'
import { expect, it } from 'vitest'
import { runMarkdownExamples, tsBlocks } from '../../../test/support/readmeExamples.ts'

it('the README example runs', async () => {
  const readme = join(import.meta.dirname, '..', 'README.md')
  expect(tsBlocks(readme)).toHaveLength(1)
  await runMarkdownExamples(readme)
})
