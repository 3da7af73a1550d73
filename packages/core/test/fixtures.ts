/**
 * Test subsystems for the core suites: each records every callback it gets
 * and counts migrated tasks in a per-cgroup counter, so "nothing changed"
 * and "exactly one of abort / commit" can be checked from outside. A plan
 * makes one fail (refuse, throw, reject, sleep where it may not) in a phase.
 */
import * as E from 'fp-ts/lib/Either.js'
import { expect } from 'vitest'
import { Host, VirtualCgroupFs, type AttachContext, type AttachPhase, type Subsystem, type HostConfig } from '@cgtx/core'

export type FailureKind = 'refuse' | 'throw' | 'reject' | 'sleep'

export interface Plan {
  /** Phase in which this subsystem fails, if any. */
  failIn?: 'prepareSleep' | 'prepareSpin'
  how?: FailureKind
  /** Make prepareSleep and attach await (a real sleep). */
  async?: boolean
}

export interface CallRecord {
  readonly transaction: number
  readonly subsystem: string
  readonly phase: AttachPhase
  /**
   * For prepareSleep / prepareSpin: whether the callback succeeded as the
   * subsystem sees it (a planned `sleep` succeeds, late; refuse / throw /
   * reject fail). Undefined for the other phases.
   */
  readonly ok?: boolean
}

export interface Counter {
  /** Tasks charged here (prepared moves count on both sides until commit or abort). */
  tasks: number
}

/** A counting subsystem with a mutable failure plan. */
export const recorder = (name: string, calls: Array<CallRecord>, plan: Plan = {}): Subsystem<Counter> & { plan: Plan } => {
  const log = (ctx: AttachContext<Counter>, ok?: boolean): void =>
    void calls.push({ transaction: ctx.transaction, subsystem: name, phase: ctx.phase, ...(ok === undefined ? {} : { ok }) })
  // Returns undefined when the plan does not fail here, else what to return
  // (a thrown error propagates). Logs the prepare call with its outcome.
  const failure = (ctx: AttachContext<Counter>, phase: 'prepareSleep' | 'prepareSpin'): unknown => {
    if (self.plan.failIn !== phase) {
      log(ctx, true)
      return undefined
    }
    const how = self.plan.how ?? 'refuse'
    log(ctx, how === 'sleep')
    switch (how) {
      case 'refuse':
        return E.left(ctx.refuse('ENOSPC', `${name} planned refusal`))
      case 'throw':
        throw new Error(`${name} planned throw`)
      case 'reject':
        return Promise.reject(new Error(`${name} planned rejection`))
      case 'sleep':
        // Succeeds, but late: the prepare's effects happen before the promise.
        if (phase === 'prepareSleep') precharge(ctx)
        return Promise.resolve(undefined)
    }
  }
  const precharge = (ctx: AttachContext<Counter>): void => {
    for (const entry of ctx.tasks) ctx.to(entry).state.tasks++
  }
  const self: Subsystem<Counter> & { plan: Plan } = {
    name,
    plan,
    createState: () => ({ tasks: 0 }),
    fork: (ctx) => void ctx.css.state.tasks++,
    exit: (_task, css) => void css.state.tasks--,
    prepareSleep(ctx) {
      const failed = failure(ctx, 'prepareSleep')
      if (failed !== undefined) return failed as never
      // Precharge the destination: visible until commit (which uncharges the
      // source) or abort (which uncharges the destination).
      precharge(ctx)
      return self.plan.async === true ? Promise.resolve() : undefined
    },
    prepareSpin(ctx) {
      return failure(ctx, 'prepareSpin') as never
    },
    abortSpin: (ctx) => log(ctx),
    abortSleep(ctx) {
      log(ctx)
      for (const entry of ctx.tasks) ctx.to(entry).state.tasks--
    },
    commit(ctx) {
      log(ctx)
      for (const entry of ctx.tasks) ctx.from(entry).state.tasks--
    },
    attach(ctx) {
      log(ctx)
      return self.plan.async === true ? Promise.resolve() : undefined
    },
    postAttach: (ctx) => log(ctx),
  }
  return self
}

/** A host with subsystems a, b, c on one v1 hierarchy `h` and d on `g`. */
export const makeHost = (calls: Array<CallRecord>, plans: Record<string, Plan> = {}, extra: Partial<HostConfig> = {}) => {
  const subsystems = ['a', 'b', 'c', 'd'].map((name) => recorder(name, calls, plans[name] ?? {}))
  const host = E.getOrElseW((error) => {
    throw new Error(JSON.stringify(error))
  })(
    Host.create({
      subsystems,
      hierarchies: [
        { name: 'h', subsystems: ['a', 'b', 'c'] },
        { name: 'g', subsystems: ['d'] },
      ],
      ...extra,
    }),
  )
  return { host, subsystems }
}

/** Unwraps a Right or fails the test with the Left. */
export const right = <A>(either: E.Either<unknown, A>): A => {
  if (E.isLeft(either)) throw new Error(`expected Right, got ${JSON.stringify(either.left)}`)
  return either.right
}

/** Unwraps a Left or fails the test. */
export const left = <L>(either: E.Either<L, unknown>): L => {
  if (E.isRight(either)) throw new Error(`expected Left, got Right ${JSON.stringify(either.right)}`)
  return either.left
}

/**
 * Every observable value of a host, as plain data: tasks (state, cgroups,
 * scheduling fields), and for every cgroup of every hierarchy its counters,
 * its css states and the contents of every file the virtual cgroupfs lists
 * there. Two equal observations mean nothing a user can see changed.
 */
export const observe = (host: Host): unknown => {
  const fs = new VirtualCgroupFs(host)
  const cgroups = host.hierarchies.flatMap((hierarchy) =>
    [...hierarchy.root.subtree()].map((cgroup) => {
      const dir = `/${hierarchy.name}${cgroup.isRoot ? '' : cgroup.path}`
      const files: Record<string, string> = {}
      for (const name of E.getOrElseW(() => [] as ReadonlyArray<string>)(fs.listSync(dir))) {
        const read = fs.readSync(`${dir}/${name}`)
        files[name] = E.isRight(read) ? read.right : `<${read.left._tag === 'SystemError' ? read.left.errno : 'bad'}>`
      }
      return {
        id: cgroup.id,
        path: `${hierarchy.name}:${cgroup.path}`,
        populated: cgroup.populated,
        nrTasks: cgroup.nrTasks,
        type: cgroup.type,
        subtreeControl: [...cgroup.subtreeControl],
        css: cgroup.hierarchy.subsystems.map(({ id }) => {
          const css = cgroup.ownCss[id]
          return css === undefined ? null : { id: css.id, online: css.online, state: JSON.stringify(css.state) }
        }),
        files,
      }
    }),
  )
  const tasks = [...host.tasks()].map((task) => ({
    tid: task.tid,
    tgid: task.tgid,
    state: task.state,
    cgroups: task.cssSet.cgroups.map((cgroup) => cgroup.id),
    policy: task.policy,
    affinity: task.affinity,
    frozen: task.frozen,
  }))
  return { cgroups, tasks, mutex: host.mutex.owner !== undefined }
}

/** A host with the given subsystems all bound to one v1 hierarchy `h`. */
export const hostWith = (subsystems: ReadonlyArray<Subsystem<any>>, extra: Partial<HostConfig> = {}): Host =>
  right(Host.create({ subsystems, hierarchies: [{ name: 'h', subsystems: subsystems.map((s) => s.name) }], ...extra }))

/**
 * The protocol's promises, checked on a call log grouped by transaction: a
 * subsystem whose prepare failed gets nothing but postAttach; one whose
 * prepareSleep (prepareSpin) succeeded gets exactly one of abortSleep
 * (abortSpin) or commit; attach iff commit; postAttach exactly once; and
 * either every prepared subsystem commits or none does. Phases come in
 * order (every prepareSleep before any prepareSpin, and so on), each phase
 * in subsystem-id order, aborts in the host's abort order.
 */
export const expectProtocol = (
  records: ReadonlyArray<CallRecord>,
  options: {
    /** Whether the transaction was expected to commit. */
    readonly committed?: boolean
    /** Subsystem names in id order (checks the order within each phase). */
    readonly ids?: ReadonlyArray<string>
    readonly abortOrder?: 'reverse' | 'kernel'
  } = {},
): void => {
  const { committed, ids, abortOrder = 'reverse' } = options
  const byTx = new Map<number, Array<CallRecord>>()
  for (const record of records) byTx.set(record.transaction, [...(byTx.get(record.transaction) ?? []), record])
  for (const [tx, txRecords] of byTx) {
    const committedTx = txRecords.some((record) => record.phase === 'commit')
    if (committed !== undefined) expect(committedTx, `tx ${tx} committed`).toBe(committed)
    const sequence = `tx ${tx}: ${txRecords.map((record) => `${record.subsystem}.${record.phase}`).join(' ')}`
    for (let i = 1; i < txRecords.length; i++) {
      const [before, after] = [txRecords[i - 1]!, txRecords[i]!]
      expect(PHASE_RANK[after.phase] >= PHASE_RANK[before.phase], `phase order in ${sequence}`).toBe(true)
      if (ids === undefined || after.phase !== before.phase) continue
      const step = ids.indexOf(after.subsystem) - ids.indexOf(before.subsystem)
      const descending = abortOrder === 'reverse' && after.phase.startsWith('abort')
      expect(descending ? step < 0 : step > 0, `subsystem order in ${sequence}`).toBe(true)
    }
    for (const name of new Set(txRecords.map((record) => record.subsystem))) {
      const mine = txRecords.filter((record) => record.subsystem === name)
      const count = (phase: string): number => mine.filter((record) => record.phase === phase).length
      const where = `tx ${tx} ${name}: ${mine.map((record) => record.phase).join(',')}`
      expect(count('postAttach'), where).toBe(1)
      expect(count('prepareSleep'), where).toBeLessThanOrEqual(1)
      expect(count('prepareSpin'), where).toBeLessThanOrEqual(1)
      const sleep = mine.find((record) => record.phase === 'prepareSleep')
      const spin = mine.find((record) => record.phase === 'prepareSpin')
      if (sleep === undefined || sleep.ok !== true) {
        // Not prepared: nothing but postAttach.
        expect(mine.filter((record) => record.phase !== 'postAttach' && record.phase !== 'prepareSleep'), where).toEqual([])
        continue
      }
      expect(count('abortSleep') + count('commit'), where).toBe(1)
      if (spin !== undefined && spin.ok === true) expect(count('abortSpin') + count('commit'), where).toBe(1)
      else expect(count('abortSpin'), where).toBe(0)
      if (spin !== undefined && spin.ok === false) expect(count('commit') + count('attach'), where).toBe(0)
      expect(count('attach'), where).toBe(count('commit'))
      expect(count('commit'), where).toBe(committedTx ? 1 : 0)
    }
  }
}

// Where each phase may come in a transaction's call log (commit and the
// aborts never both occur).
const PHASE_RANK: Record<AttachPhase, number> = {
  prepareSleep: 0,
  prepareSpin: 1,
  abortSpin: 2,
  commit: 2,
  abortSleep: 3,
  attach: 3,
  postAttach: 4,
}
