/** The README's example runs as written and prints what the README says. */
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { expect, it } from 'vitest'

const here = dirname(fileURLToPath(import.meta.url))
const readme = readFileSync(join(here, '..', 'README.md'), 'utf8')

it('runs the README example', async () => {
  const code = /```ts\n([\s\S]*?)```/.exec(readme)![1]!
  const file = join(here, `readme-example-${process.pid}.ts`)
  writeFileSync(file, code)
  const printed: Array<string> = []
  const log = console.log
  console.log = (...args: Array<unknown>) => void printed.push(args.map((arg) => (typeof arg === 'string' ? arg : JSON.stringify(arg))).join(' '))
  try {
    await import(file)
  } finally {
    console.log = log
    rmSync(file)
  }
  expect(printed).toHaveLength(2)
  expect(printed[0]).toMatch(/^Aborted write \/cpuset\/cgtx-test-[0-9a-f]+\/app\/cgroup\.procs: ENOSPC \["pids"\]$/)
  expect(printed[1]).toMatch(/^Committed .*"pids":"\/cgtx-test-[0-9a-f]+\/app".*"cpuset":"\/cgtx-test-[0-9a-f]+\/app"/)
})
