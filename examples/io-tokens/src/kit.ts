/**
 * The conformance-kit configuration of io_tokens: what `describeConformance`
 * and `cgtx check examples/io-tokens/src/kit.ts` run.
 */
// step 5: kit
import * as fc from 'fast-check'
import type { Cgroup, Host, Subsystem } from '@cgtx/core'
import type { KitAction, KitConfig } from '@cgtx/subsystems/testing'
import { ioTokens, type IoTokens, type IoTokensState } from './ioTokens.ts'

const acquire = (tokens: number): KitAction<IoTokensState> => ({
  name: `acquire ${tokens} tokens`,
  run: (subsystem, task) => (subsystem as IoTokens).acquire(task, tokens),
})

const giveBack: KitAction<IoTokensState> = {
  name: 'give back 1 token',
  run: (subsystem, task) => (subsystem as IoTokens).giveBack(task, 1),
}

// The model: a cgroup's counter is the tokens held by the tasks (and zombies) below it.
const heldBelow = (cgroup: Cgroup, _host: Host, subsystem: Subsystem<IoTokensState>): number => {
  let tokens = 0
  for (const at of cgroup.subtree())
    for (const cssSet of at.cssSets) for (const task of [...cssSet.tasks, ...cssSet.zombies]) tokens += (subsystem as IoTokens).held(task)
  return tokens
}

/** io_tokens under the kit. */
export const kit: KitConfig<IoTokensState> = {
  factory: ioTokens,
  arbitraries: {
    writes: fc.record({ file: fc.constant('io_tokens.max'), value: fc.constantFrom('max', '0', '2', '5', '1000001', '-1', 'lots', ' 3\n') }),
    actions: fc.constantFrom(acquire(1), acquire(3), giveBack),
  },
  // Everything but nothing: the counter, the limit and the events.
  equivalence: (a, b) => a.counter.usage === b.counter.usage && a.counter.limit === b.counter.limit && a.maxEvents === b.maxEvents,
  capabilities: { accounting: { usage: (state) => state.counter.usage, expected: heldBelow, releasedOnReap: true } },
}
// end step 5
