/**
 * Finds exported declarations without a doc comment, so "every export says
 * what it is for" is checked, not hoped for.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'

const sources = (dir: string): Array<string> =>
  readdirSync(dir).flatMap((name) => (statSync(join(dir, name)).isDirectory() ? sources(join(dir, name)) : name.endsWith('.ts') ? [join(dir, name)] : []))

/** `file:line` of every exported declaration under `dir` not preceded by a doc comment. */
export const undocumentedExports = (dir: string): Array<string> => {
  const undocumented: Array<string> = []
  for (const file of sources(dir)) {
    const lines = readFileSync(file, 'utf8').split('\n')
    lines.forEach((line, i) => {
      // Declarations only: `export { … } from` and `export type { … } from` re-export what is documented at its source.
      if (!/^export (const|function|interface|type \w|class|abstract class)/.test(line)) return
      let j = i - 1
      while (j >= 0 && lines[j]!.trim().startsWith('//')) j--
      if (j < 0 || !lines[j]!.trimEnd().endsWith('*/')) undocumented.push(`${relative(dir, file)}:${i + 1}`)
    })
  }
  return undocumented
}
