/**
 * The cpu controller (kernel/sched/core.c, rt.c): weights (`cpu.weight` on
 * v2, `cpu.shares` on v1, clamped to 2..262144 as the kernel clamps),
 * bandwidth (`cpu.max` on v2; `cpu.cfs_quota_us` / `cpu.cfs_period_us` on
 * v1 with the kernel's bounds and the v1 rule that a child's quota / period
 * ratio may not exceed its parent's, EINVAL), and `cpu.stat`. Tasks'
 * CPU time is accounted with {@link CpuSubsystem.account} into the cgroup
 * the task is in at that moment, so an attach moves where time lands; the
 * attach itself never refuses an ordinary task. With `rtGroupSched` on, v1
 * groups have `cpu.rt_runtime_us` / `cpu.rt_period_us` (a new group gets no
 * RT runtime) and a real-time task moved into a group without RT runtime
 * is refused with EINVAL.
 *
 * @module cpu
 */
import * as E from 'fp-ts/lib/Either.js'
import * as t from 'io-ts'
import { badArgument, decode, realClock, strstrip, Task, type CgtxError, type Clock, type Css } from '@cgtx/core'
import { s64, u64 } from '../codecs.ts'
import { defineSubsystem, extend, failWith, type DefinedSubsystem, type FileSpec } from '../defineSubsystem.ts'

/** Per-cgroup state of the cpu controller. Times in microseconds unless named otherwise. */
export interface CpuState {
  /** The group's weight in v1 shares (v2 `cpu.weight` is derived from it). */
  shares: number
  /** CFS quota per period (`Infinity` for max). */
  quota: number
  period: number
  /** Quota / period of this group as limited by its ancestors (`hierarchical_quota`, as a ratio). */
  hierarchicalRatio: number
  /** RT runtime per RT period (`Infinity` for -1); only with rtGroupSched. */
  rtRuntime: number
  rtPeriod: number
  /** CPU time accounted here or below, in nanoseconds. */
  usageNs: number
  /** Periods in which the group ran, and in which it ran out of quota. */
  periods: number
  throttled: number
  throttledUs: number
  /** Bandwidth bookkeeping: the current period's index and the time used in it. */
  periodIndex: number
  periodUsedUs: number
}

/** Options of the cpu controller. */
export interface CpuOptions {
  /** Model `CONFIG_RT_GROUP_SCHED`: v1 RT runtime files and the RT attach check. */
  readonly rtGroupSched?: boolean
  /** The clock periods are measured on (default the real clock). */
  readonly clock?: Clock
}

/** The cpu controller: a subsystem plus the accounting API. */
export interface CpuSubsystem extends DefinedSubsystem<CpuState> {
  /**
   * Accounts `ns` nanoseconds of CPU time to the task's current cpu cgroup
   * and its ancestors, counting periods and throttling against quotas.
   */
  account(task: unknown, ns: unknown): E.Either<CgtxError, void>
}

/** Smallest `cpu.shares` (MIN_SHARES); smaller writes are clamped up to it. */
export const MIN_SHARES = 2
/** Largest `cpu.shares` (MAX_SHARES); larger writes are clamped down to it. */
export const MAX_SHARES = 262_144
/** Shortest CFS period, in µs (1 ms). */
export const MIN_CFS_PERIOD_US = 1000
/** Longest CFS period, in µs (1 s). */
export const MAX_CFS_PERIOD_US = 1_000_000
/** Smallest CFS quota, in µs (1 ms). */
export const MIN_CFS_QUOTA_US = 1000
/** The largest quota (`max_cfs_runtime`), in µs. */
export const MAX_CFS_QUOTA_US = 2 ** 44 - 1
const DEFAULT_PERIOD_US = 100_000
const RT_ROOT_RUNTIME_US = 950_000
const RT_PERIOD_US = 1_000_000

// to_ratio: quota per period in 2^-20 units.
const ratio = (period: number, quota: number): number => (quota === Number.POSITIVE_INFINITY ? Number.POSITIVE_INFINITY : Math.floor((quota * 2 ** 20) / period))

const weightOfShares = (shares: number): number => Math.max(1, Math.round((shares * 100) / 1024))
const sharesOfWeight = (weight: number): number => Math.round((weight * 1024) / 100)

const WeightCodec = new t.Type<number, string, string>(
  'cpu.weight',
  (u): u is number => typeof u === 'number' && Number.isInteger(u) && u >= 1 && u <= 10_000,
  (input, context) => {
    const value = u64.validate(input, context)
    if (E.isLeft(value)) return value
    return value.right < 1 || value.right > 10_000 ? failWith('ERANGE', input, context) : t.success(value.right)
  },
  (value) => `${value}\n`,
)

/** `cpu.max`: "quota period" or "max period"; the period may be left out (kept). */
export interface CpuMax {
  readonly quota: number
  readonly period: number | undefined
}

const CpuMaxCodec = new t.Type<CpuMax, string, string>(
  'cpu.max',
  (u): u is CpuMax => typeof u === 'object' && u !== null && 'quota' in u,
  (input, context) => {
    const tokens = strstrip(input).split(/[ \t\n]+/)
    const [quotaText, periodText] = tokens
    if (quotaText === undefined || quotaText === '' || tokens.length > 2) return failWith('EINVAL', input, context)
    const quota = quotaText === 'max' ? Number.POSITIVE_INFINITY : /^[0-9]+$/.test(quotaText) ? Number(quotaText) : Number.NaN
    const period = periodText === undefined ? undefined : /^[0-9]+$/.test(periodText) ? Number(periodText) : Number.NaN
    if (Number.isNaN(quota) || (period !== undefined && Number.isNaN(period))) return failWith('EINVAL', input, context)
    return t.success({ quota, period })
  },
  (value) => `${value.quota === Number.POSITIVE_INFINITY ? 'max' : value.quota}${value.period === undefined ? '' : ` ${value.period}`}\n`,
)

const NonNegative = t.refinement(t.number, (n) => Number.isFinite(n) && n >= 0, 'non-negative number')

const cpuCss = (css: Css<CpuState>, cgroup: { ownCss: ReadonlyArray<unknown> }): Css<CpuState> | undefined =>
  cgroup.ownCss[css.subsystemId] as Css<CpuState> | undefined

/**
 * tg_cfs_schedulable_down over the subtree of `css` with its quota / period
 * replaced: EINVAL (v1) if a group's ratio exceeds its parent's; v2 clamps.
 * Returns the new hierarchical ratios, applied only if all are accepted.
 */
const schedulable = (css: Css<CpuState>, quota: number, period: number): Map<Css<CpuState>, number> | undefined => {
  const v1 = css.cgroup.hierarchy.version === 'v1'
  const ratios = new Map<Css<CpuState>, number>()
  for (const cgroup of css.cgroup.subtree()) {
    const at = cpuCss(css, cgroup)
    if (at === undefined) continue
    const own = at === css ? ratio(period, quota) : ratio(at.state.period, at.state.quota)
    const parent = at.parent === undefined ? Number.POSITIVE_INFINITY : ratios.get(at.parent) ?? at.parent.state.hierarchicalRatio
    let effective: number
    if (at.parent === undefined) effective = Number.POSITIVE_INFINITY
    else if (own === Number.POSITIVE_INFINITY) effective = parent
    else if (v1 && own > parent) return undefined
    else effective = Math.min(own, parent)
    ratios.set(at, effective)
  }
  return ratios
}

const setBandwidth = (css: Css<CpuState>, quota: number, period: number, ratios: Map<Css<CpuState>, number>): void => {
  css.state.quota = quota
  css.state.period = period
  for (const [at, value] of ratios) at.state.hierarchicalRatio = value
}

// tg_set_cfs_bandwidth's bounds; the ratio rule is checked by `schedulable`.
const bandwidthRefusal = (quota: number, period: number): string | undefined => {
  if (period < MIN_CFS_PERIOD_US || period > MAX_CFS_PERIOD_US) return `period ${period} outside ${MIN_CFS_PERIOD_US}..${MAX_CFS_PERIOD_US}`
  if (quota !== Number.POSITIVE_INFINITY && (quota < MIN_CFS_QUOTA_US || quota > MAX_CFS_QUOTA_US)) return `quota ${quota} outside ${MIN_CFS_QUOTA_US}..${MAX_CFS_QUOTA_US}`
  return undefined
}

const hasRtTasks = (css: Css<CpuState>): boolean => {
  for (const task of css.cgroup.tasks()) if (task.policy === 'fifo' || task.policy === 'rr') return true
  return false
}

const rtRatio = (state: CpuState): number => (state.rtRuntime === Number.POSITIVE_INFINITY ? Number.POSITIVE_INFINITY : ratio(state.rtPeriod, state.rtRuntime))

// tg_rt_schedulable for `css` with new runtime / period.
const rtRefusal = (css: Css<CpuState>, runtime: number, period: number): 'EINVAL' | 'EBUSY' | undefined => {
  if (runtime !== Number.POSITIVE_INFINITY && runtime > period) return 'EINVAL'
  if (css.cgroup.isRoot && runtime === 0) return 'EINVAL'
  if (runtime === 0 && css.state.rtRuntime !== 0 && hasRtTasks(css)) return 'EBUSY'
  const own = runtime === Number.POSITIVE_INFINITY ? Number.POSITIVE_INFINITY : ratio(period, runtime)
  if (own > ratio(RT_PERIOD_US, RT_ROOT_RUNTIME_US) && !css.cgroup.isRoot) return 'EINVAL'
  let children = 0
  for (const child of css.cgroup.children.values()) {
    const at = cpuCss(css, child)
    if (at !== undefined) children += rtRatio(at.state)
  }
  if (children > own) return 'EINVAL'
  const parent = css.parent
  if (parent !== undefined) {
    let siblings = own
    for (const sibling of parent.cgroup.children.values()) {
      const at = cpuCss(css, sibling)
      if (at !== undefined && at !== css) siblings += rtRatio(at.state)
    }
    if (siblings > rtRatio(parent.state)) return 'EINVAL'
  }
  return undefined
}

const file = <A>(spec: FileSpec<CpuState, A>): FileSpec<CpuState, A> => spec

// v1 RT group scheduling files (CONFIG_RT_GROUP_SCHED); -1 is unlimited.
const rtFiles: ReadonlyArray<FileSpec<CpuState, number>> = [
  file({
    name: 'cpu.rt_runtime_us',
    on: 'all',
    versions: ['v1'],
    read: (css) => `${css.state.rtRuntime === Number.POSITIVE_INFINITY ? -1 : css.state.rtRuntime}\n`,
    write: {
      codec: s64,
      invalid: 'EINVAL',
      check: (css, runtimeUs, ctx) => {
        const refused = rtRefusal(css, runtimeUs < 0 ? Number.POSITIVE_INFINITY : runtimeUs, css.state.rtPeriod)
        return refused === undefined ? undefined : ctx.refuse(refused, 'RT runtime not schedulable')
      },
      apply: (css, runtimeUs) => void (css.state.rtRuntime = runtimeUs < 0 ? Number.POSITIVE_INFINITY : runtimeUs),
    },
  }),
  file({
    name: 'cpu.rt_period_us',
    on: 'all',
    versions: ['v1'],
    read: (css) => `${css.state.rtPeriod}\n`,
    write: {
      codec: u64,
      invalid: 'EINVAL',
      check: (css, period, ctx) => {
        if (period === 0) return ctx.refuse('EINVAL', 'zero RT period')
        const refused = rtRefusal(css, css.state.rtRuntime, period)
        return refused === undefined ? undefined : ctx.refuse(refused, 'RT runtime not schedulable')
      },
      apply: (css, period) => void (css.state.rtPeriod = period),
    },
  }),
]

const statV2 = (css: Css<CpuState>): string => {
  const usage = Math.floor(css.state.usageNs / 1000)
  const base = `usage_usec ${usage}\nuser_usec ${usage}\nsystem_usec 0\nnice_usec 0\n`
  if (css.cgroup.isRoot) return base
  return `${base}nr_periods ${css.state.periods}\nnr_throttled ${css.state.throttled}\nthrottled_usec ${css.state.throttledUs}\nnr_bursts 0\nburst_usec 0\n`
}

const statV1 = (css: Css<CpuState>): string =>
  `nr_periods ${css.state.periods}\nnr_throttled ${css.state.throttled}\nthrottled_time ${css.state.throttledUs * 1000}\nnr_bursts 0\nburst_time 0\n`

const CpuOptionsCodec = t.partial(
  { rtGroupSched: t.boolean, clock: t.type({ now: t.Function, setTimer: t.Function, sleep: t.Function }, 'Clock') },
  'CpuOptions',
)

/** Creates a cpu controller; malformed options are a BadArgument. */
export const cpu = (options: unknown = {}): E.Either<CgtxError, CpuSubsystem> =>
  E.map(() => makeCpu(options as CpuOptions))(decode(CpuOptionsCodec, options, 'options'))

/** @internal The controller for options already typed (the package's own callers). */
export const makeCpu = (options: CpuOptions): CpuSubsystem => {
  const clock = options.clock ?? realClock
  const rt = options.rtGroupSched === true
  const base = defineSubsystem<CpuState>({
    name: 'cpu',
    threaded: true,
    state: (parent) => ({
      shares: 1024,
      quota: Number.POSITIVE_INFINITY,
      period: DEFAULT_PERIOD_US,
      hierarchicalRatio: parent?.hierarchicalRatio ?? Number.POSITIVE_INFINITY,
      rtRuntime: parent === undefined ? RT_ROOT_RUNTIME_US : 0,
      rtPeriod: RT_PERIOD_US,
      usageNs: 0,
      periods: 0,
      throttled: 0,
      throttledUs: 0,
      periodIndex: -1,
      periodUsedUs: 0,
    }),
    files: [
      {
        name: 'cpu.weight',
        versions: ['v2'],
        read: (css) => `${weightOfShares(css.state.shares)}\n`,
        write: { codec: WeightCodec, invalid: 'EINVAL', apply: (css, weight) => void (css.state.shares = sharesOfWeight(weight)) },
      },
      {
        name: 'cpu.max',
        versions: ['v2'],
        read: (css) => `${css.state.quota === Number.POSITIVE_INFINITY ? 'max' : css.state.quota} ${css.state.period}\n`,
        write: {
          codec: CpuMaxCodec,
          invalid: 'EINVAL',
          check: (css, value, ctx) => {
            const refused = bandwidthRefusal(value.quota, value.period ?? css.state.period)
            return refused === undefined ? undefined : ctx.refuse('EINVAL', refused)
          },
          apply: (css, value) => {
            const period = value.period ?? css.state.period
            setBandwidth(css, value.quota, period, schedulable(css, value.quota, period)!)
          },
        },
      },
      { name: 'cpu.stat', on: 'all', versions: ['v2'], read: statV2 },
      {
        name: 'cpu.shares',
        on: 'all',
        versions: ['v1'],
        read: (css) => `${css.state.shares}\n`,
        write: {
          codec: u64,
          invalid: 'EINVAL',
          check: (css, _shares, ctx) => (css.cgroup.isRoot ? ctx.refuse('EINVAL', 'the root group has no shares') : undefined),
          apply: (css, shares) => void (css.state.shares = Math.min(MAX_SHARES, Math.max(MIN_SHARES, shares))),
        },
      },
      {
        name: 'cpu.cfs_quota_us',
        on: 'all',
        versions: ['v1'],
        read: (css) => `${css.state.quota === Number.POSITIVE_INFINITY ? -1 : css.state.quota}\n`,
        write: {
          codec: s64,
          invalid: 'EINVAL',
          check: (css, quotaUs, ctx) => {
            if (css.cgroup.isRoot) return ctx.refuse('EINVAL', 'the root group has no quota')
            const quota = quotaUs < 0 ? Number.POSITIVE_INFINITY : quotaUs
            const refused = bandwidthRefusal(quota, css.state.period)
            if (refused !== undefined) return ctx.refuse('EINVAL', refused)
            return schedulable(css, quota, css.state.period) === undefined ? ctx.refuse('EINVAL', 'quota ratio above the parent’s') : undefined
          },
          apply: (css, quotaUs) => {
            const quota = quotaUs < 0 ? Number.POSITIVE_INFINITY : quotaUs
            setBandwidth(css, quota, css.state.period, schedulable(css, quota, css.state.period)!)
          },
        },
      },
      {
        name: 'cpu.cfs_period_us',
        on: 'all',
        versions: ['v1'],
        read: (css) => `${css.state.period}\n`,
        write: {
          codec: u64,
          invalid: 'EINVAL',
          check: (css, period, ctx) => {
            if (css.cgroup.isRoot) return ctx.refuse('EINVAL', 'the root group has no period')
            const refused = bandwidthRefusal(css.state.quota, period)
            if (refused !== undefined) return ctx.refuse('EINVAL', refused)
            return schedulable(css, css.state.quota, period) === undefined ? ctx.refuse('EINVAL', 'quota ratio above the parent’s') : undefined
          },
          apply: (css, period) => setBandwidth(css, css.state.quota, period, schedulable(css, css.state.quota, period)!),
        },
      },
      { name: 'cpu.stat', on: 'all', versions: ['v1'], read: statV1 },
      ...(rt ? rtFiles : []),
    ],
    attach: rt
      ? {
          prepareSleep: (ctx, moves) => {
            for (const move of moves) {
              if ((move.task.policy === 'fifo' || move.task.policy === 'rr') && move.to.cgroup.hierarchy.version === 'v1' && move.to.state.rtRuntime === 0)
                return ctx.refuse('EINVAL', `RT task ${move.task.tid} into a group without RT runtime`)
            }
            return undefined
          },
        }
      : {},
  })

  const accountAt = (css: Css<CpuState>, ns: number): void => {
    const nowUs = clock.now() * 1000
    for (let at: Css<CpuState> | undefined = css; at !== undefined; at = at.parent) {
      const state = at.state
      state.usageNs += ns
      if (state.quota === Number.POSITIVE_INFINITY) continue
      const index = Math.floor(nowUs / state.period)
      if (index !== state.periodIndex) {
        state.periodIndex = index
        state.periodUsedUs = 0
        state.periods++
      }
      const before = state.periodUsedUs
      state.periodUsedUs += ns / 1000
      if (before <= state.quota && state.periodUsedUs > state.quota) {
        state.throttled++
        state.throttledUs += Math.max(0, Math.round((index + 1) * state.period - nowUs))
      }
    }
  }

  return extend(base, {
    account: (task: unknown, ns: unknown): E.Either<CgtxError, void> => {
      if (!(task instanceof Task) || task.state === 'reaped') return E.left(badArgument('task', task, 'a live task'))
      const amount = decode(NonNegative, ns, 'ns')
      if (E.isLeft(amount)) return amount
      const css = base.cssOf(task)
      if (css !== undefined) accountAt(css, amount.right)
      return E.right(undefined)
    },
  })
}
