/**
 * docs/plugins.md is runnable: every code block it marks as a snippet is
 * exactly the code between the step markers of an example file (which the
 * other tests compile and run), and its law table lists the kit's laws.
 */
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { allLaws } from '@cgtx/subsystems/testing'

const root = new URL('../../../', import.meta.url)
const read = (path: string): string => readFileSync(new URL(path, root), 'utf8')
const doc = read('docs/plugins.md')

const stepOf = (file: string, step: string): string => {
  const match = new RegExp(`// step ${step}: [^\\n]*\\n([\\s\\S]*?)\\n\\s*// end step ${step}`).exec(read(file))
  if (match === null) throw new Error(`${file} has no step ${step}`)
  const lines = match[1]!.split('\n')
  const indent = Math.min(...lines.filter((line) => line.trim() !== '').map((line) => line.length - line.trimStart().length))
  return lines.map((line) => line.slice(indent)).join('\n')
}

describe('docs/plugins.md', () => {
  const snippets = [...doc.matchAll(/<!-- snippet: ([^#]+)#(\d+) -->\n```ts\n([\s\S]*?)\n```/g)]

  it('walks through all seven steps', () => {
    expect(snippets.map((match) => match[2])).toEqual(['1', '2', '3', '4', '5', '6', '7'])
  })

  for (const [, file, step, code] of snippets) {
    it(`step ${step} is the code of ${file}`, () => {
      expect(code).toBe(stepOf(file!, step!))
    })
  }

  it('lists every law of the kit with its description', () => {
    for (const law of allLaws) expect(doc).toContain(`| ${law.suite} | ${law.name} | ${law.description} |`)
  })
})
