/**
 * Each subsystem's attach callbacks, read once when the host is built, into
 * objects of one shape: the transaction's per-phase loops then load
 * callbacks monomorphically, whatever shape each plugin's object has.
 */
import type { AttachContext, CallbackResult, Subsystem } from '../subsystem.ts'
import type { MaybePromise } from './settle.ts'

type Callback<R> = ((ctx: AttachContext<unknown>) => R) | undefined

/** The attach callbacks of one subsystem; absent ones are undefined. */
export interface AttachCallbacks {
  readonly prepareSleep: Callback<MaybePromise<CallbackResult>>
  readonly prepareSpin: Callback<CallbackResult>
  readonly abortSpin: Callback<void>
  readonly abortSleep: Callback<MaybePromise<void>>
  readonly commit: Callback<void>
  readonly attach: Callback<MaybePromise<void>>
  readonly postAttach: Callback<MaybePromise<void>>
}

/** The table of a subsystem with no attach callback at all: it is never given a context. */
export const noCallbacks: AttachCallbacks = Object.freeze({
  prepareSleep: undefined,
  prepareSpin: undefined,
  abortSpin: undefined,
  abortSleep: undefined,
  commit: undefined,
  attach: undefined,
  postAttach: undefined,
})

/** The callbacks of `subsystem`, in the common shape ({@link noCallbacks} when it has none). */
export const callbacksOf = (subsystem: Subsystem<any>): AttachCallbacks => {
  const callbacks: AttachCallbacks = {
    prepareSleep: subsystem.prepareSleep,
    prepareSpin: subsystem.prepareSpin,
    abortSpin: subsystem.abortSpin,
    abortSleep: subsystem.abortSleep,
    commit: subsystem.commit,
    attach: subsystem.attach,
    postAttach: subsystem.postAttach,
  }
  return Object.values(callbacks).every((callback) => callback === undefined) ? noCallbacks : callbacks
}

/** The bit of each phase in a set of phases (a transaction skips the phases nobody has a callback for). */
export const phaseBit = {
  prepareSleep: 1,
  prepareSpin: 2,
  abortSpin: 4,
  abortSleep: 8,
  commit: 16,
  attach: 32,
  postAttach: 64,
} as const

/** The phases `callbacks` has a callback for. */
export const phasesOf = (callbacks: AttachCallbacks): number => {
  let phases = 0
  for (const phase of Object.keys(phaseBit) as Array<keyof typeof phaseBit>) if (callbacks[phase] !== undefined) phases |= phaseBit[phase]
  return phases
}
