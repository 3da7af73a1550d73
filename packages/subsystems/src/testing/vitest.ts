/**
 * The vitest adapter: {@link describeConformance} declares one `describe`
 * per configuration with one named `it` per law, each failing with the
 * report {@link formatResult} prints.
 *
 * @module testing/vitest
 */
import { describe, it } from 'vitest'
import type { KitConfig, RunOptions } from './config.ts'
import { lawsFor } from './laws.ts'
import { formatResult, runLaw } from './run.ts'

/**
 * Declares the conformance suite of a controller in vitest.
 *
 * @example
 * describeConformance({ factory: () => ioTokens(), arbitraries: { writes }, equivalence })
 */
export const describeConformance = <S>(config: KitConfig<S>, options: RunOptions = {}): void => {
  describe(`conformance: ${config.name ?? config.factory().name}`, () => {
    for (const law of lawsFor(config)) {
      if (options.only !== undefined && !options.only.includes(law.name)) continue
      it(`${law.suite}: ${law.name}`, async () => {
        const result = await runLaw(law, config, options)
        if (!result.ok) throw new Error(formatResult(result))
      })
    }
  })
}
