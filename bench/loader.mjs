// Loads TypeScript for benchmarks: esbuild's transform without `keepNames`.
// tsx (used by the CLI) wraps every function it creates in a naming helper,
// which costs more than a whole attach transaction; users who compile cgtx
// (tsc, esbuild, a bundler) never pay for it, so benchmarks must not either.
import { register } from 'node:module'

register('./loader-hooks.mjs', import.meta.url)
