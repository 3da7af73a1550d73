/**
 * Sync-first control flow: code that returns a value directly when nothing
 * had to wait, and a promise only when something did. The attach path uses it
 * so an uncontended, synchronous transaction allocates no promise at all.
 */

/** A value now, or later. */
export type MaybePromise<A> = A | Promise<A>

/** True for thenables (what a callback returns when it sleeps). */
export const isPromiseLike = (value: unknown): value is PromiseLike<unknown> =>
  typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function'
