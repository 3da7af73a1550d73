/**
 * Retry policies for the kernel's transient refusals, as explicit settings
 * rather than constants buried in a loop:
 *
 * - `justForked` — EINVAL on a PID write: a task still in TASK_NEW (just
 *   forked) is refused; runc and containerd retry 5 × 30 ms.
 * - `exited` — ESRCH on a PID write: the task exited between being listed and
 *   being moved; `skip` it (the kernel itself skips exiting tasks) or `fail`.
 * - `busyRmdir` — EBUSY on rmdir while the last tasks are still exiting;
 *   retry with exponential backoff (containerd: 10 ms × 2^k, 5 tries).
 *
 * @module retry
 */
import * as E from 'fp-ts/lib/Either.js'
import * as t from 'io-ts'
import { decode, realClock, type CgtxError, type Clock, type Errno } from '@cgtx/core'
import type { KernelCgroupFs } from './cgroupfs.ts'

const NonNegative = t.refinement(t.number, (n) => Number.isFinite(n) && n >= 0, 'NonNegative')
const AtLeastOne = t.refinement(t.number, (n) => Number.isFinite(n) && n >= 1, 'AtLeastOne')

/** Try up to `attempts` times; wait `delayMs`, multiplied by `backoff` after each failure. */
export const RetryPolicy = t.intersection(
  [t.type({ attempts: t.refinement(t.number, (n) => Number.isInteger(n) && n >= 1, 'attempts >= 1'), delayMs: NonNegative }), t.partial({ backoff: AtLeastOne })],
  'RetryPolicy',
)
/** A decoded {@link RetryPolicy}. */
export type RetryPolicy = t.TypeOf<typeof RetryPolicy>

/** Every retry setting of the backend. */
export const RetryPolicies = t.type(
  {
    justForked: RetryPolicy,
    exited: t.keyof({ skip: null, fail: null }),
    busyRmdir: RetryPolicy,
  },
  'RetryPolicies',
)
/** A decoded {@link RetryPolicies}. */
export type RetryPolicies = t.TypeOf<typeof RetryPolicies>

/** The defaults seen in runc / containerd: EINVAL 5 × 30 ms, skip exited tasks, EBUSY 5 × 10 ms doubling. */
export const defaultRetryPolicies: RetryPolicies = {
  justForked: { attempts: 5, delayMs: 30 },
  exited: 'skip',
  busyRmdir: { attempts: 5, delayMs: 10, backoff: 2 },
}

/** Decodes partial settings over {@link defaultRetryPolicies}. */
export const retryPolicies = (settings: unknown = {}): E.Either<CgtxError, RetryPolicies> => {
  const partial = decode(t.partial(RetryPolicies.props), settings, 'retry')
  if (E.isLeft(partial)) return partial
  return E.right({ ...defaultRetryPolicies, ...partial.right })
}

/** What {@link retrying} did: the final answer and how many attempts it took. */
export interface Retried<A> {
  readonly result: E.Either<CgtxError, A>
  readonly attempts: number
}

/**
 * Runs `op` until it succeeds, fails with an errno other than `on`, or the
 * policy's attempts are spent; sleeps between attempts on `clock`.
 */
export const retrying = async <A>(policy: RetryPolicy, on: Errno, op: () => E.Either<CgtxError, A>, clock: Clock = realClock): Promise<Retried<A>> => {
  let delay = policy.delayMs
  for (let attempt = 1; ; attempt++) {
    const result = op()
    const transient = E.isLeft(result) && result.left._tag === 'SystemError' && result.left.errno === on
    if (!transient || attempt >= policy.attempts) return { result, attempts: attempt }
    await clock.sleep(delay)
    delay *= policy.backoff ?? 1
  }
}

/** rmdir with the `busyRmdir` policy: retries EBUSY while exiting tasks leave; ENOENT counts as done. */
export const rmdirRetrying = async (
  fs: Pick<KernelCgroupFs, 'rmdirSync'>,
  path: string,
  policy: RetryPolicy = defaultRetryPolicies.busyRmdir,
  clock: Clock = realClock,
): Promise<Retried<void>> => {
  const decoded = decode(RetryPolicy, policy, 'policy')
  if (E.isLeft(decoded)) return { result: decoded, attempts: 0 }
  const retried = await retrying(decoded.right, 'EBUSY', () => fs.rmdirSync(path), clock)
  const gone = E.isLeft(retried.result) && retried.result.left._tag === 'SystemError' && retried.result.left.errno === 'ENOENT'
  return gone ? { result: E.right(undefined), attempts: retried.attempts } : retried
}
