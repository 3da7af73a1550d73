/**
 * Running the laws without a test runner: {@link runLaws} checks every law
 * a configuration selects with fast-check and returns one result per law;
 * a failure names the law, the seed, the replay path and the shrunk
 * operation sequence ({@link formatResult}).
 *
 * @module testing/run
 */
import * as fc from 'fast-check'
import type { KitConfig, RunOptions } from './config.ts'
import { lawsFor, LawViolation, type Law, type Suite } from './laws.ts'
import { describeOps, type Op } from './world.ts'

/** The outcome of one law. */
export interface LawResult {
  readonly law: string
  readonly suite: Suite
  readonly ok: boolean
  readonly runs: number
  readonly seed: number
  /** Replay path of the shrunk failure. */
  readonly path?: string
  /** The shrunk operations, one per line. */
  readonly counterexample?: string
  /** What was violated. */
  readonly error?: string
}

const defaultRuns = (): number => {
  const fromEnv = Number(process.env['CGTX_KIT_RUNS'])
  return Number.isInteger(fromEnv) && fromEnv > 0 ? fromEnv : 60
}

// The generated values, with operations cut after the one that broke the law (later ones never ran).
const describeCounterexample = (values: ReadonlyArray<unknown>, step: number | undefined): string => {
  const parts: Array<string> = []
  for (const value of values) {
    if (typeof value === 'object' && value !== null && 'layout' in value && 'abortOrder' in value) parts.push(`  layout: ${String(value.layout)}, abort order: ${String(value.abortOrder)}`)
    else if (Array.isArray(value) && value.every((item) => typeof item === 'object' && item !== null && 'kind' in item))
      parts.push(describeOps((value as ReadonlyArray<Op<unknown>>).slice(0, step)) || '  (no operations)')
    else if (Array.isArray(value)) parts.push(value.map((item, i) => `  ${i + 1}. ${fc.stringify(item)}`).join('\n'))
    else if (typeof value === 'object' && value !== null && 'phase' in value && 'kind' in value) parts.push(`  companion fault: ${String(value.kind)} in ${String(value.phase)}`)
    else parts.push(`  ${fc.stringify(value)}`)
  }
  return parts.join('\n')
}

/** Checks one law. */
export const runLaw = async <S>(law: Law, config: KitConfig<S>, options: RunOptions = {}): Promise<LawResult> => {
  const numRuns = options.numRuns ?? defaultRuns()
  const details = await fc.check(law.property(config, options.maxOperations ?? 25), {
    numRuns,
    ...(options.seed === undefined ? {} : { seed: options.seed }),
    ...(options.path === undefined ? {} : { path: options.path }),
  })
  if (!details.failed) return { law: law.name, suite: law.suite, ok: true, runs: details.numRuns, seed: details.seed }
  const error = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance)
  return {
    law: law.name,
    suite: law.suite,
    ok: false,
    runs: details.numRuns,
    seed: details.seed,
    ...(details.counterexamplePath === null ? {} : { path: details.counterexamplePath }),
    ...(details.counterexample === null
      ? {}
      : { counterexample: describeCounterexample(details.counterexample as ReadonlyArray<unknown>, details.errorInstance instanceof LawViolation ? details.errorInstance.step : undefined) }),
    error,
  }
}

/** Checks every law the configuration selects (or those named in `options.only`), in catalog order. */
export const runLaws = async <S>(config: KitConfig<S>, options: RunOptions = {}): Promise<ReadonlyArray<LawResult>> => {
  const results: Array<LawResult> = []
  for (const law of lawsFor(config)) {
    if (options.only !== undefined && !options.only.includes(law.name)) continue
    results.push(await runLaw(law, config, options))
  }
  return results
}

/** A report of one result: a line for a pass; law, seed, path, violation and shrunk operations for a failure. */
export const formatResult = (result: LawResult): string => {
  if (result.ok) return `✓ ${result.suite}: ${result.law} (${result.runs} runs, seed ${result.seed})`
  return [
    `✗ ${result.suite}: ${result.law}`,
    `  seed: ${result.seed}   path: ${result.path ?? '-'}`,
    `  violation: ${result.error ?? 'unknown'}`,
    '  shrunk operations:',
    result.counterexample ?? '  (none)',
    `  replay: runLaws(config, { seed: ${result.seed}, path: ${JSON.stringify(result.path ?? '')}, only: [${JSON.stringify(result.law)}] })`,
  ].join('\n')
}
