/**
 * Runs the README's example block exactly as written there.
 */
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { expect, it } from 'vitest'

const here = dirname(fileURLToPath(import.meta.url))

it('the README example runs and logs what it says', async () => {
  const readme = readFileSync(join(here, '..', 'README.md'), 'utf8')
  const block = /## Example\n\n```ts\n([\s\S]*?)```/.exec(readme)![1]!
  const expected = /\/\/ log: (.*)\n/.exec(block)![1]!.split(', ')
  // Written next to the tests so package imports resolve; `log` is exported for the check.
  const dir = mkdtempSync(join(here, '.readme-'))
  const file = join(dir, 'example.ts')
  writeFileSync(file, `${block}\nexport { log }\n`)
  try {
    const module = (await import(pathToFileURL(file).href)) as { log: Array<string> }
    expect(module.log).toEqual(expected)
  } finally {
    const { rmSync } = await import('node:fs')
    rmSync(dir, { recursive: true, force: true })
  }
})
