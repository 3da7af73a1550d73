/**
 * Sync-first control flow: code that returns a value directly when nothing
 * had to wait, and a promise only when something did. The attach path uses it
 * so an uncontended, synchronous transaction allocates no promise at all.
 */

/** A value now, or later. */
export type MaybePromise<A> = A | Promise<A>

/** How an awaited value settled. */
export type Settled = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly error: unknown }

/** True for thenables (what a callback returns when it sleeps). */
export const isPromiseLike = (value: unknown): value is PromiseLike<unknown> =>
  typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function'

/**
 * Runs a generator that yields a promise wherever it must wait and receives
 * how it settled. Stays synchronous until the first yield.
 */
export const drive = <R>(steps: Generator<PromiseLike<unknown>, R, Settled>): MaybePromise<R> => {
  const first = steps.next(undefined as never)
  if (first.done === true) return first.value
  return new Promise<R>((resolve, reject) => {
    const resume = (settled: Settled): void => {
      try {
        const step = steps.next(settled)
        if (step.done === true) resolve(step.value)
        else step.value.then(onValue, onError)
      } catch (error) {
        reject(error)
      }
    }
    const onValue = (value: unknown): void => resume({ ok: true, value })
    const onError = (error: unknown): void => resume({ ok: false, error })
    first.value.then(onValue, onError)
  })
}
