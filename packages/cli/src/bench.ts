/**
 * `cgtx bench [NAME]`: runs a benchmark of the repository's `bench/` folder
 * (the same as `pnpm bench NAME`) in a child Node process with the
 * benchmark loader and an exposed GC, so the CLI itself imports no benchmark.
 */
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')

/** Runs `bench/run.ts` with `argv`; resolves with its exit code. */
export const runBench = (argv: ReadonlyArray<string>, print: (line: string) => void): Promise<number> => {
  const runner = join(root, 'bench', 'run.ts')
  if (!existsSync(runner)) {
    print(`cgtx bench: no bench/run.ts next to this CLI (${root}); benchmarks run from a clone of the repository`)
    return Promise.resolve(2)
  }
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--expose-gc', '--import', './bench/loader.mjs', runner, ...argv], { cwd: root, stdio: 'inherit' })
    child.on('error', (error) => {
      print(`cgtx bench: ${error.message}`)
      resolve(2)
    })
    child.on('exit', (code) => resolve(code ?? 1))
  })
}
