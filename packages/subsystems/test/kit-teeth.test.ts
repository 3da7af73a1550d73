/**
 * The kit has teeth: a correct counted controller passes every law, and
 * each deliberately broken variant is caught by the law that names its bug,
 * with a report giving the law, the seed, the path and the shrunk operations.
 */
import { readFileSync } from 'node:fs'
import * as fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { defineSubsystem, HierarchicalCounter, limitOrMax } from '../src/index.ts'
import { formatResult, runLaws, type KitConfig } from '../src/testing/index.ts'
import { tasksBelow } from '../src/testing/builtins.ts'

type Mutation = 'none' | 'forgets to undo' | 'double-charges' | 'leaks on abort' | 'sleeps in the spin phase' | 'counts a thread twice'

interface Counted {
  readonly counter: HierarchicalCounter
}

// A pids-like controller; `mutation` breaks it in one way.
const counted = (mutation: Mutation) =>
  defineSubsystem<Counted>({
    name: 'counted',
    state: (parent) => ({ counter: new HierarchicalCounter(parent?.counter) }),
    files: [
      { name: 'counted.current', read: (css) => `${css.state.counter.usage}\n` },
      {
        name: 'counted.max',
        read: (css) => (css.state.counter.limit === Number.POSITIVE_INFINITY ? 'max\n' : `${css.state.counter.limit}\n`),
        write: { codec: limitOrMax('counted.max', 1000), invalid: 'EINVAL', apply: (css, limit) => void (css.state.counter.limit = limit) },
      },
    ],
    fork: {
      can: (ctx) => (ctx.css.state.counter.tryCharge(1) === undefined ? undefined : ctx.refuse('EAGAIN', 'over counted.max')),
      cancel: (ctx) => ctx.css.state.counter.uncharge(1),
      done: (ctx) => {
        if (mutation === 'counts a thread twice' && ctx.child.group === ctx.parent.group) ctx.css.state.counter.charge(1)
      },
    },
    release: (_task, css) => css.state.counter.uncharge(1),
    attach: {
      prepareSleep: (_ctx, moves) => {
        for (const move of moves) move.to.state.counter.charge(mutation === 'double-charges' ? 2 : 1)
      },
      ...(mutation === 'sleeps in the spin phase' ? { prepareSpin: () => Promise.resolve() as never } : {}),
      ...(mutation === 'forgets to undo'
        ? {}
        : {
            abortSleep: (_ctx, moves) => {
              for (const move of moves) {
                if (mutation === 'leaks on abort') move.to.state.counter.usage -= 1
                else move.to.state.counter.uncharge(1)
              }
            },
          }),
      commit: (_ctx, moves) => {
        for (const move of moves) move.from.state.counter.uncharge(1)
      },
    },
  })

const configOf = (mutation: Mutation): KitConfig<Counted> => ({
  name: `counted (${mutation})`,
  factory: () => counted(mutation),
  arbitraries: { writes: fc.record({ file: fc.constant('counted.max'), value: fc.constantFrom('max', '0', '1', '3', '-1', 'x') }) },
  equivalence: (a, b) => a.counter.usage === b.counter.usage && a.counter.limit === b.counter.limit,
  capabilities: { accounting: { usage: (state) => state.counter.usage, expected: (cgroup) => tasksBelow(cgroup), releasedOnReap: true } },
})

describe('the kit has teeth', () => {
  it('passes the correct controller on every law', async () => {
    const results = await runLaws(configOf('none'), { numRuns: 40 })
    expect(results.filter((result) => !result.ok).map(formatResult)).toEqual([])
    expect(results.map((result) => result.law)).toContain('composes with the built-in controllers')
  })

  const caught: ReadonlyArray<readonly [Mutation, string]> = [
    ['forgets to undo', 'abort restores an equivalent state'],
    ['leaks on abort', 'abort restores an equivalent state'],
    ['leaks on abort', 'everything is returned when every task is reaped'],
    ['double-charges', 'usage matches the model'],
    ['sleeps in the spin phase', 'the spin phase never sleeps'],
    ['counts a thread twice', 'usage matches the model'],
  ]
  for (const [mutation, law] of caught) {
    it(`catches a controller that ${mutation} with “${law}”`, async () => {
      const [result] = await runLaws(configOf(mutation), { numRuns: 200, only: [law] })
      expect(result!.ok).toBe(false)
      const report = formatResult(result!)
      expect(report).toContain(`✗ `)
      expect(report).toContain(law)
      expect(report).toMatch(/seed: -?\d+ {3}path: [\d:]+/)
      expect(report).toMatch(/shrunk operations:\n(.|\n)*\d\. /)
    })
  }

  it('prints the failure report docs/plugins.md shows (seed 42)', async () => {
    const [result] = await runLaws(configOf('forgets to undo'), { numRuns: 200, seed: 42, only: ['abort restores an equivalent state'] })
    expect(readFileSync(new URL('../../../docs/plugins.md', import.meta.url), 'utf8')).toContain(formatResult(result!))
  })

  it('replays a reported failure from its seed and path', async () => {
    const [first] = await runLaws(configOf('forgets to undo'), { numRuns: 200, only: ['abort restores an equivalent state'] })
    const [again] = await runLaws(configOf('forgets to undo'), { numRuns: 1, seed: first!.seed, path: first!.path!, only: ['abort restores an equivalent state'] })
    expect(again!.ok).toBe(false)
    expect(again!.counterexample).toBe(first!.counterexample)
  })
})
