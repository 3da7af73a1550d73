/**
 * `pnpm bench <name>` runs `bench/<name>.ts`, whose `run()` measures and
 * reports. With no name, lists the benchmarks.
 */
import { readdirSync } from 'node:fs'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const available = readdirSync(here)
  .filter((file) => file.endsWith('.ts') && !['run.ts', 'harness.ts'].includes(file))
  .map((file) => file.slice(0, -3))

const name = process.argv[2]
if (name === undefined || !available.includes(name)) {
  console.error(`usage: pnpm bench <name>\navailable: ${available.join(', ') || '(none)'}`)
  process.exit(name === undefined ? 0 : 2)
}
const bench = (await import(`./${name}.ts`)) as { run: (args: ReadonlyArray<string>) => Promise<void> | void }
await bench.run(process.argv.slice(3))
