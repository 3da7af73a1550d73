/**
 * `cgtx check <module> [options]`: runs the conformance kit on a controller.
 * The module exports its kit configuration as `kit` (or as its default
 * export): a factory, arbitraries, an equivalence and capabilities (see
 * `@cgtx/subsystems/testing`). `builtin:<name>` checks a built-in
 * controller instead. Prints one line per law and, for a failure, the law,
 * the seed, the replay path and the shrunk operations; exits 1 if any law
 * failed, 2 on bad usage.
 *
 * Options: `--runs N`, `--seed N`, `--path P` (replay, with `--seed`),
 * `--only "law name"` (repeatable).
 */
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import * as E from 'fp-ts/lib/Either.js'
import * as t from 'io-ts'
import { builtinKitConfigs, formatResult, runLaws, type KitConfig, type RunOptions } from '@cgtx/subsystems/testing'

/** Usage line of the command. */
export const checkUsage = 'cgtx check <module | builtin:NAME> [--runs N] [--seed N --path P] [--only "law"]...'

const KitShape = t.type({ factory: t.Function, equivalence: t.Function, arbitraries: t.UnknownRecord }, 'KitConfig')

const Integer = t.refinement(t.Int, () => true, 'integer')

interface Parsed {
  readonly target: string
  readonly options: RunOptions
}

const parseArgs = (args: ReadonlyArray<string>): E.Either<string, Parsed> => {
  let target: string | undefined
  let runs: number | undefined
  let seed: number | undefined
  let path: string | undefined
  const only: Array<string> = []
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!
    const value = args[i + 1]
    const number = (): E.Either<string, number> => {
      const parsed = Integer.decode(Number(value))
      return value === undefined || E.isLeft(parsed) ? E.left(`${arg} needs an integer`) : E.right(parsed.right)
    }
    switch (arg) {
      case '--runs': {
        const parsed = number()
        if (E.isLeft(parsed) || parsed.right < 1) return E.left('--runs needs a positive integer')
        runs = parsed.right
        i++
        break
      }
      case '--seed': {
        const parsed = number()
        if (E.isLeft(parsed)) return parsed
        seed = parsed.right
        i++
        break
      }
      case '--path':
      case '--only':
        if (value === undefined) return E.left(`${arg} needs a value`)
        if (arg === '--path') path = value
        else only.push(value)
        i++
        break
      default:
        if (arg.startsWith('--') || target !== undefined) return E.left(`unexpected argument ${JSON.stringify(arg)}`)
        target = arg
    }
  }
  if (target === undefined) return E.left('a module to check is required')
  if (path !== undefined && seed === undefined) return E.left('--path needs --seed')
  return E.right({
    target,
    options: {
      ...(runs === undefined ? {} : { numRuns: runs }),
      ...(seed === undefined ? {} : { seed }),
      ...(path === undefined ? {} : { path }),
      ...(only.length === 0 ? {} : { only }),
    },
  })
}

const loadKit = async (target: string): Promise<E.Either<string, KitConfig<unknown>>> => {
  if (target.startsWith('builtin:')) {
    const name = target.slice('builtin:'.length)
    const config = (builtinKitConfigs as Readonly<Record<string, KitConfig<unknown>>>)[name]
    return config === undefined ? E.left(`no built-in controller ${JSON.stringify(name)} (${Object.keys(builtinKitConfigs).join(', ')})`) : E.right(config)
  }
  let loaded: Record<string, unknown>
  try {
    loaded = (await import(pathToFileURL(resolve(target)).href)) as Record<string, unknown>
  } catch (error) {
    return E.left(`cannot load ${target}: ${error instanceof Error ? error.message : String(error)}`)
  }
  const candidate = loaded['kit'] ?? loaded['default']
  if (!KitShape.is(candidate)) return E.left(`${target} exports no kit configuration (expected \`export const kit = { factory, arbitraries, equivalence }\`)`)
  return E.right(candidate as KitConfig<unknown>)
}

/** Runs `cgtx check` with the arguments after `check`; returns the exit code. */
export const runCheck = async (args: ReadonlyArray<string>, print: (line: string) => void): Promise<number> => {
  const parsed = parseArgs(args)
  if (E.isLeft(parsed)) {
    print(`cgtx check: ${parsed.left}\nusage: ${checkUsage}`)
    return 2
  }
  const kit = await loadKit(parsed.right.target)
  if (E.isLeft(kit)) {
    print(`cgtx check: ${kit.left}`)
    return 2
  }
  const name = kit.right.name ?? kit.right.factory().name
  print(`checking ${name} (${parsed.right.target})`)
  const results = await runLaws(kit.right, parsed.right.options)
  for (const result of results) {
    print(formatResult(result))
    if (!result.ok)
      print(`  replay: cgtx check ${parsed.right.target} --seed ${result.seed}${result.path === undefined ? '' : ` --path ${result.path}`} --only ${JSON.stringify(result.law)}`)
  }
  const failed = results.filter((result) => !result.ok).length
  print(failed === 0 ? `${name}: all ${results.length} laws hold` : `${name}: ${failed} of ${results.length} laws failed`)
  return failed === 0 ? 0 : 1
}
