/**
 * A simulated CPU scheduler for the time works burn with {@link burn}. Each
 * modelled CPU shares every tick among the burns runnable on it in
 * proportion to their cgroups' weights, hierarchically (a cgroup's share is
 * split among its runnable children by their weights, as CFS group
 * scheduling does), and a cgroup whose bandwidth quota for the current period
 * is spent — its own or an ancestor's — gets nothing until the next period.
 *
 * Two cgroups are involved per burn: the one it competes and is throttled in
 * (where the worker task is) and the one the time is charged to. They differ
 * only under the `remote-charge` strategy, where the worker stays in the root
 * and the work's cgroup is charged after the fact (Tejun Heo's
 * back-charging: the charge also counts against the cgroup's quota, as debt
 * carried into later periods).
 *
 * @module cpu
 */
import type { Cgroup, Clock, Timer } from '@cgtx/core'

/** CPU bandwidth limit of one cgroup (`cpu.max`): `quotaMs` of CPU time per `periodMs`. */
export interface Bandwidth {
  readonly quotaMs: number
  readonly periodMs: number
}

/** Where the scheduler reads weights and limits and reports usage. */
export interface CpuPolicy {
  /** `cpu.weight` (1..10000; 100 is a plain task's share). */
  weight(cgroup: Cgroup): number
  /** `cpu.max`, or undefined for no limit. */
  bandwidth(cgroup: Cgroup): Bandwidth | undefined
  /** Called for every grant of CPU time, after the scheduler's own accounting. */
  charge?(cgroup: Cgroup, ms: number): void
}

/** No weights, no limits: every cgroup weighs 100. */
export const unlimitedCpu: CpuPolicy = { weight: () => 100, bandwidth: () => undefined }

/** CPU time accounted to one cgroup. */
export interface CpuStat {
  /** Charged to this cgroup itself. */
  readonly selfMs: number
  /** Charged to it and its descendants (cpu.stat usage). */
  readonly usageMs: number
  /** Periods in which it was throttled, and the time its burns waited throttled. */
  readonly nrThrottled: number
  readonly throttledMs: number
}

interface Burn {
  readonly competes: Cgroup
  readonly charged: Cgroup
  readonly cpu: number
  /** Clock time it became runnable: it shares only ticks that start after. */
  readonly since: number
  remaining: number
  readonly resolve: () => void
}

interface PeriodState {
  start: number
  used: number
  throttledInPeriod: boolean
  nrThrottled: number
  throttledMs: number
}

const EPSILON = 1e-9

/** The scheduler; one per workqueue system. */
export class CpuScheduler {
  private readonly runnable: Array<Array<Burn>>
  private readonly selfUsage = new Map<Cgroup, number>()
  private readonly periods = new Map<Cgroup, PeriodState>()
  private readonly perCpu: Array<number>
  private timer: Timer | undefined

  constructor(
    private readonly clock: Clock,
    readonly cpus: number,
    private readonly policy: CpuPolicy,
    private readonly tickMs: number,
  ) {
    this.runnable = Array.from({ length: cpus }, () => [])
    this.perCpu = Array.from({ length: cpus }, () => 0)
  }

  /**
   * Consumes `ms` of CPU time on one of `allowed` (all CPUs if undefined),
   * competing in `competes` and charged to `charged`. Resolves when granted.
   */
  burn(ms: number, competes: Cgroup, charged: Cgroup, allowed: ReadonlyArray<number> | undefined): Promise<void> {
    if (ms <= 0) return Promise.resolve()
    const cpu = this.pickCpu(allowed)
    return new Promise<void>((resolve) => {
      this.runnable[cpu]!.push({ competes, charged, cpu, since: this.clock.now(), remaining: ms, resolve })
      this.arm()
    })
  }

  /** Accounting of `cgroup`. */
  stat(cgroup: Cgroup): CpuStat {
    let usage = 0
    for (const member of cgroup.subtree()) usage += this.selfUsage.get(member) ?? 0
    for (const [charged, ms] of this.selfUsage) if (charged.dead && isBelow(charged, cgroup)) usage += ms
    const period = this.periods.get(cgroup)
    return {
      selfMs: this.selfUsage.get(cgroup) ?? 0,
      usageMs: usage,
      nrThrottled: period?.nrThrottled ?? 0,
      throttledMs: period?.throttledMs ?? 0,
    }
  }

  /** CPU time granted so far, per CPU. */
  usagePerCpu(): ReadonlyArray<number> {
    return [...this.perCpu]
  }

  /** Burns waiting for CPU, per CPU. */
  load(): ReadonlyArray<number> {
    return this.runnable.map((queue) => queue.length)
  }

  private pickCpu(allowed: ReadonlyArray<number> | undefined): number {
    const candidates = allowed ?? this.runnable.map((_, cpu) => cpu)
    let best = candidates[0] ?? 0
    for (const cpu of candidates) if (this.runnable[cpu]!.length < this.runnable[best]!.length) best = cpu
    return best
  }

  private arm(): void {
    if (this.timer !== undefined) return
    this.timer = this.clock.setTimer(this.tickMs, () => {
      this.timer = undefined
      this.tick()
    })
  }

  private tick(): void {
    const end = this.clock.now()
    // The tick covers [now, end): periods and quotas are those of its start.
    const now = end - this.tickMs
    const done: Array<Burn> = []
    for (const queue of this.runnable) {
      if (queue.length === 0) continue
      const grants = new Map<Burn, number>()
      const eligible = queue.filter((burn) => burn.since <= now + EPSILON)
      this.share(eligible.filter((burn) => !this.throttled(burn.competes, now)), this.tickMs, undefined, grants)
      for (const burn of eligible) {
        const wanted = grants.get(burn) ?? 0
        if (wanted <= 0) {
          this.noteThrottled(burn.competes, now)
          continue
        }
        const granted = Math.min(wanted, burn.remaining, this.quotaLeft(burn.competes, now))
        if (granted <= 0) continue
        burn.remaining -= granted
        this.account(burn, granted, now)
        if (burn.remaining <= EPSILON) done.push(burn)
      }
    }
    for (const burn of done) {
      const queue = this.runnable[burn.cpu]!
      queue.splice(queue.indexOf(burn), 1)
      burn.resolve()
    }
    if (this.runnable.some((queue) => queue.length > 0)) this.arm()
  }

  // Splits `amount` among `burns` below `level` (undefined = above the roots)
  // by the weights of the child cgroups they sit under.
  private share(burns: ReadonlyArray<Burn>, amount: number, level: Cgroup | undefined, grants: Map<Burn, number>): void {
    if (burns.length === 0) return
    const groups = new Map<Cgroup | Burn, Array<Burn>>()
    for (const burn of burns) {
      const key: Cgroup | Burn = burn.competes === level ? burn : childOn(burn.competes, level)
      const members = groups.get(key)
      if (members === undefined) groups.set(key, [burn])
      else members.push(burn)
    }
    let total = 0
    const weights = new Map<Cgroup | Burn, number>()
    for (const key of groups.keys()) {
      const weight = isCgroupKey(key) ? this.policy.weight(key) : 100
      weights.set(key, weight)
      total += weight
    }
    for (const [key, members] of groups) {
      const part = (amount * weights.get(key)!) / total
      if (isCgroupKey(key)) this.share(members, part, key, grants)
      else grants.set(key, part)
    }
  }

  private period(cgroup: Cgroup, now: number): PeriodState | undefined {
    const bandwidth = this.policy.bandwidth(cgroup)
    let state = this.periods.get(cgroup)
    if (bandwidth === undefined) return state
    if (state === undefined) {
      state = { start: now - (now % bandwidth.periodMs), used: 0, throttledInPeriod: false, nrThrottled: 0, throttledMs: 0 }
      this.periods.set(cgroup, state)
    }
    while (now >= state.start + bandwidth.periodMs) {
      state.start += bandwidth.periodMs
      // Debt (remote charges over the quota) carries into the next period.
      state.used = Math.max(0, state.used - bandwidth.quotaMs)
      state.throttledInPeriod = false
    }
    return state
  }

  private quotaLeft(cgroup: Cgroup, now: number): number {
    let left = Number.POSITIVE_INFINITY
    for (let at: Cgroup | undefined = cgroup; at !== undefined; at = at.parent) {
      const bandwidth = this.policy.bandwidth(at)
      if (bandwidth === undefined) continue
      left = Math.min(left, bandwidth.quotaMs - this.period(at, now)!.used)
    }
    return left
  }

  private throttled(cgroup: Cgroup, now: number): boolean {
    return this.quotaLeft(cgroup, now) <= EPSILON
  }

  private noteThrottled(cgroup: Cgroup, now: number): void {
    for (let at: Cgroup | undefined = cgroup; at !== undefined; at = at.parent) {
      const bandwidth = this.policy.bandwidth(at)
      if (bandwidth === undefined) continue
      const state = this.period(at, now)!
      if (state.used < bandwidth.quotaMs - EPSILON) continue
      if (!state.throttledInPeriod) {
        state.throttledInPeriod = true
        state.nrThrottled++
      }
      state.throttledMs += this.tickMs
    }
  }

  private account(burn: Burn, ms: number, now: number): void {
    this.selfUsage.set(burn.charged, (this.selfUsage.get(burn.charged) ?? 0) + ms)
    this.perCpu[burn.cpu]! += ms
    for (let at: Cgroup | undefined = burn.charged; at !== undefined; at = at.parent) {
      const state = this.period(at, now)
      if (state !== undefined) state.used += ms
    }
    this.policy.charge?.(burn.charged, ms)
  }
}

const isCgroupKey = (key: unknown): key is Cgroup => typeof key === 'object' && key !== null && 'hierarchy' in key

// The ancestor of `cgroup` (or itself) whose parent is `level` (undefined: the root).
const childOn = (cgroup: Cgroup, level: Cgroup | undefined): Cgroup => {
  let at = cgroup
  while (at.parent !== level && at.parent !== undefined) at = at.parent
  return at
}

const isBelow = (cgroup: Cgroup, ancestor: Cgroup): boolean => {
  for (let at: Cgroup | undefined = cgroup; at !== undefined; at = at.parent) if (at === ancestor) return true
  return false
}
