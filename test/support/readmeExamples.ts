/**
 * Runs the TypeScript examples of a README, so documentation cannot rot:
 * every ```ts block is written under node_modules/.cache (where workspace
 * packages resolve as they do for users) and imported.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { basename, dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')

/** The ```ts blocks of a markdown file. */
export const tsBlocks = (markdownPath: string): ReadonlyArray<string> =>
  [...readFileSync(markdownPath, 'utf8').matchAll(/```ts\n([\s\S]*?)```/g)].map((match) => match[1]!)

/** Imports each ```ts block of `markdownPath` as a module; resolves with the modules' exports. */
export const runMarkdownExamples = async (markdownPath: string): Promise<ReadonlyArray<Record<string, unknown>>> => {
  const dir = join(root, 'node_modules', '.cache', 'cgtx-examples', relative(root, dirname(markdownPath)).replaceAll('/', '_') || 'root')
  mkdirSync(dir, { recursive: true })
  const modules: Array<Record<string, unknown>> = []
  for (const [i, block] of tsBlocks(markdownPath).entries()) {
    const file = join(dir, `${basename(markdownPath, '.md')}-${i}.ts`)
    writeFileSync(file, block)
    modules.push((await import(/* @vite-ignore */ `${file}?t=${Date.now()}`)) as Record<string, unknown>)
  }
  return modules
}
