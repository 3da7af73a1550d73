/**
 * The companion subsystem the kit mounts next to the controller under test:
 * it has no state of its own and misbehaves on request in one phase of the
 * next transactions — refuses, throws, rejects, or sleeps where it may not —
 * so the controller's abort paths run after it prepared. In the interleaving
 * suite its prepareSleep waits on a gate the scheduler releases.
 *
 * @module testing/companion
 */
import * as E from 'fp-ts/lib/Either.js'
import type { AttachContext, AttachPhase, Subsystem } from '@cgtx/core'

/** How the companion misbehaves. */
export type FaultKind = 'refuse' | 'throw' | 'reject' | 'sleep'

/** A misbehaviour in one phase. */
export interface FaultPlan {
  readonly phase: AttachPhase
  readonly kind: FaultKind
}

/** Every phase × kind the core distinguishes; `sleep` only where sleeping is forbidden. */
export const faultPlans: ReadonlyArray<FaultPlan> = [
  { phase: 'prepareSleep', kind: 'refuse' },
  { phase: 'prepareSleep', kind: 'throw' },
  { phase: 'prepareSleep', kind: 'reject' },
  { phase: 'prepareSpin', kind: 'refuse' },
  { phase: 'prepareSpin', kind: 'throw' },
  { phase: 'prepareSpin', kind: 'sleep' },
  { phase: 'abortSpin', kind: 'throw' },
  { phase: 'abortSleep', kind: 'throw' },
  { phase: 'commit', kind: 'throw' },
  { phase: 'commit', kind: 'sleep' },
  { phase: 'attach', kind: 'throw' },
  { phase: 'postAttach', kind: 'throw' },
]

/** The companion: a subsystem plus the plan it follows and the gate its prepareSleep waits on. */
export interface Companion extends Subsystem<null> {
  /** The misbehaviour for the next transactions (undefined: behave). */
  plan: FaultPlan | undefined
  /** When set, prepareSleep awaits it (the interleaving suite's scheduler point). */
  gate: (() => Promise<unknown>) | undefined
}

/** Name the companion is registered under. */
export const COMPANION = 'kit_companion'

/** A fresh companion. */
export const companion = (): Companion => {
  const act = (ctx: AttachContext<null>, phase: AttachPhase): unknown => {
    const plan = self.plan
    if (plan === undefined || plan.phase !== phase) return undefined
    switch (plan.kind) {
      case 'refuse':
        return E.left(ctx.refuse('EBUSY', 'companion refuses on purpose'))
      case 'throw':
        throw new Error(`companion throws in ${phase} on purpose`)
      case 'reject':
        return Promise.reject(new Error(`companion rejects in ${phase} on purpose`))
      case 'sleep':
        return Promise.resolve(undefined)
    }
  }
  const self: Companion = {
    name: COMPANION,
    threaded: true,
    plan: undefined,
    gate: undefined,
    createState: () => null,
    prepareSleep: (ctx) => {
      const gate = self.gate
      if (gate !== undefined) return gate().then(() => act(ctx, 'prepareSleep') as never)
      return act(ctx, 'prepareSleep') as never
    },
    prepareSpin: (ctx) => act(ctx, 'prepareSpin') as never,
    abortSpin: (ctx) => void act(ctx, 'abortSpin'),
    abortSleep: (ctx) => act(ctx, 'abortSleep') as never,
    commit: (ctx) => act(ctx, 'commit') as never,
    attach: (ctx) => act(ctx, 'attach') as never,
    postAttach: (ctx) => act(ctx, 'postAttach') as never,
  }
  return self
}
