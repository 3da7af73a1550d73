/**
 * The README is runnable: its quick start is test/quick-start.ts verbatim
 * and prints what the README says; its defineSubsystem snippet is the one
 * in defineSubsystem's doc comment and works; every export of the package
 * has a doc comment.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { quickStart } from './quick-start.ts'
import { undocumentedExports } from '../../../test/support/exportDocs.ts'

const here = new URL('..', import.meta.url).pathname
const readme = readFileSync(join(here, 'README.md'), 'utf8')

const blocks = (lang: string): Array<string> => [...readme.matchAll(new RegExp('```' + lang + '\\n([\\s\\S]*?)\\n```', 'g'))].map((match) => match[1]!)

describe('README', () => {
  it('shows test/quick-start.ts verbatim', () => {
    const code = readFileSync(join(here, 'test/quick-start.ts'), 'utf8').split('\n').slice(1).join('\n').trimEnd()
    expect(blocks('ts')[0]).toBe(code)
  })

  it('prints what the README says the quick start prints', () => {
    expect(quickStart().join('\n')).toBe(blocks('text')[0])
  })

  it('documents every export of the package', () => {
    expect(undocumentedExports(join(here, 'src'))).toEqual([])
  })

  it('the defineSubsystem snippet is the documented example, and it counts tasks', async () => {
    const source = readFileSync(join(here, 'src/defineSubsystem.ts'), 'utf8')
    const snippet = blocks('ts')[1]!
    const documented = /@example\n([\s\S]*?)\n \*\//.exec(source.slice(source.indexOf('Builds a controller from')))![1]!
      .split('\n')
      .map((line) => line.replace(/^ \* ?/, ''))
      .join('\n')
    expect(snippet).toBe(documented)
    const { defineSubsystem, createHost } = await import('../src/index.ts')
    const counted = defineSubsystem<{ tasks: number }>({
      name: 'counted',
      state: () => ({ tasks: 0 }),
      files: [{ name: 'counted.tasks', read: (css) => `${css.state.tasks}\n` }],
      fork: { done: (ctx) => void ctx.css.state.tasks++ },
      release: (_task, css) => void css.state.tasks--,
      attach: {
        commit: (_ctx, moves) => {
          for (const move of moves) { move.from.state.tasks--; move.to.state.tasks++ }
        },
      },
    })
    const made = createHost({ layout: 'v1', extra: [counted] })
    if (made._tag === 'Left') throw new Error(made.left.message)
    const { host } = made.right
    host.mkdirSync({ hierarchy: 'counted', path: '/a' })
    const parent = host.spawn()
    host.attachSync({ mode: 'process', pid: parent.tid, to: { hierarchy: 'counted', path: '/a' } })
    host.forkSync(parent.tid)
    expect(counted.cssOf(parent)!.state.tasks).toBe(2)
  })
})
