/**
 * The differential suite: every scenario runs on the model (a Host laid out
 * like this machine) and on the real kernel, and their answers must agree,
 * except where docs/kernel.md's table of known differences says why not.
 * Needs root and a writable /sys/fs/cgroup; fails loudly otherwise.
 */
import * as E from 'fp-ts/lib/Either.js'
import { release } from 'node:os'
import { beforeAll, describe, expect, it } from 'vitest'
import { requireSandbox, runScenario, type Step, type StepResult } from '@cgtx/kernel/testing'
import { coreScenarios } from './kernel-scenarios.ts'
import { knownDifference } from './kernel-known-differences.ts'

beforeAll(async () => {
  // Loud when the kernel side cannot run at all.
  const probe = await requireSandbox({ hierarchies: ['pids'] })
  expect((await probe.cleanup()).leftovers).toEqual([])
  console.log(`kernel differential suite on Linux ${release()}`)
})

const divergences = (results: ReadonlyArray<StepResult>) =>
  results.flatMap((result, index) => {
    if (result.agree !== false) return []
    const known = knownDifference(result)
    return known === undefined ? [{ index, step: result.step, model: result.model, kernel: result.kernel }] : []
  })

const run = async (steps: ReadonlyArray<Step>, hierarchies?: ReadonlyArray<string>) => {
  const ran = await runScenario({ steps }, { on: 'both', ...(hierarchies === undefined ? {} : { hierarchies }) })
  if (E.isLeft(ran)) throw new Error(ran.left.message)
  expect(ran.right.leftovers).toEqual([])
  return ran.right
}

describe(`model vs kernel (${release()}): hand-written scenarios`, () => {
  for (const [name, steps] of Object.entries(coreScenarios)) {
    it(name, async () => {
      const ran = await run(steps)
      expect(divergences(ran.results)).toEqual([])
    })
  }
})
