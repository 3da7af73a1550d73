/**
 * The cpuset controller (kernel/cgroup/cpuset.c, cpuset-v1.c): which CPUs
 * and memory nodes a cgroup's tasks may use.
 *
 * - `cpuset.cpus` / `cpuset.mems` in the kernel's list syntax (see
 *   {@link listCodec}); a CPU at or beyond the machine's count is ERANGE, a
 *   node outside the machine's is EINVAL (the parser's width for nodes is
 *   MAX_NUMNODES, then the subset check refuses), as observed on Linux 6.18.
 * - v1: a new child is empty (unless the parent has `cgroup.clone_children`
 *   and no exclusive child), so attaching to it fails ENOSPC until both
 *   masks are set; a change must keep every child a subset (EBUSY), stay a
 *   subset of the parent (EACCES, flags included), and not overlap an
 *   exclusive sibling (EINVAL). Effective masks equal the configured ones.
 * - v2: the masks are requests; effective = requested ∩ parent's effective,
 *   or the parent's effective when that is empty.
 * - Both: a populated cpuset, or one with an attach in flight, cannot be
 *   emptied (ENOSPC). A task that may not change affinity is refused with
 *   EINVAL. At commit each moved task's affinity becomes the destination's
 *   effective CPUs, intersected with the mask the task asked for when that
 *   leaves something (the request is remembered across cpusets).
 *
 * @module cpuset
 */
import * as E from 'fp-ts/lib/Either.js'
import * as t from 'io-ts'
import { decode, type Cgroup, type CgtxError, type Css, type FileContext, type SystemError, type Task } from '@cgtx/core'
import { u64 } from '../codecs.ts'
import { defineSubsystem, type DefinedSubsystem, type FileSpec } from '../defineSubsystem.ts'
import { formatList, intersect, isSubset, listCodec, overlaps, range, sameList, type CpuList } from './cpulist.ts'

export { formatList, intersect, isSubset, listCodec, overlaps, parseList, range, sameList, type CpuList } from './cpulist.ts'

/** Per-cgroup state of the cpuset controller. */
export interface CpusetState {
  /** Configured masks (`cpuset.cpus`, `cpuset.mems`). */
  cpus: CpuList
  mems: CpuList
  /** What tasks here may use (`cpuset.effective_cpus`, v2 `cpuset.cpus.effective`). */
  effectiveCpus: CpuList
  effectiveMems: CpuList
  /** v1 exclusivity flags. */
  cpuExclusive: boolean
  memExclusive: boolean
  /** v1 `cpuset.memory_migrate`. */
  memoryMigrate: boolean
  /** Attaches prepared into this cpuset and not yet committed or aborted. */
  attachInProgress: number
}

/** Options: the machine's CPU and memory-node counts (match the host's). */
export interface CpusetOptions {
  readonly cpus?: number
  readonly mems?: number
}

/** The cpuset controller type. */
export type CpusetSubsystem = DefinedSubsystem<CpusetState>

/** Width of the node-list parser (MAX_NUMNODES with NODES_SHIFT 10). */
export const MAX_NUMNODES = 1024

// The configuration a write would produce.
interface Trial {
  readonly cpus: CpuList
  readonly mems: CpuList
  readonly cpuExclusive: boolean
  readonly memExclusive: boolean
}

const trialOf = (state: CpusetState, change: Partial<Trial>): Trial => ({
  cpus: change.cpus ?? state.cpus,
  mems: change.mems ?? state.mems,
  cpuExclusive: change.cpuExclusive ?? state.cpuExclusive,
  memExclusive: change.memExclusive ?? state.memExclusive,
})

// is_cpuset_subset: masks and flags.
const isCpusetSubset = (p: Trial, q: Trial): boolean =>
  isSubset(p.cpus, q.cpus) && isSubset(p.mems, q.mems) && (!p.cpuExclusive || q.cpuExclusive) && (!p.memExclusive || q.memExclusive)

const CpusetOptionsCodec = t.partial(
  {
    cpus: t.refinement(t.Int, (n) => n >= 1 && n <= 4096, 'Int in 1..4096'),
    mems: t.refinement(t.Int, (n) => n >= 1 && n <= MAX_NUMNODES, `Int in 1..${MAX_NUMNODES}`),
  },
  'CpusetOptions',
)

/**
 * Creates a cpuset controller for a machine with `cpus` CPUs and `mems`
 * memory nodes (default 4 and 1, like the host); malformed options are a BadArgument.
 */
export const cpuset = (options: unknown = {}): E.Either<CgtxError, CpusetSubsystem> =>
  E.map(() => makeCpuset(options as CpusetOptions))(decode(CpusetOptionsCodec, options, 'options'))

/** @internal The controller for options already typed (the package's own callers). */
export const makeCpuset = (options: CpusetOptions): CpusetSubsystem => {
  const allCpus = range(options.cpus ?? 4)
  const allMems = range(options.mems ?? 1)

  const cssIn = (cgroup: Cgroup): Css<CpusetState> | undefined => {
    for (const css of cgroup.ownCss) if (css !== undefined && css.subsystem === self) return css as Css<CpusetState>
    return undefined
  }

  const siblingsOf = (css: Css<CpusetState>): Array<Css<CpusetState>> => {
    const parent = css.cgroup.parent
    if (parent === undefined) return []
    return [...parent.children.values()].flatMap((cgroup) => {
      const at = cssIn(cgroup)
      return at === undefined || at === css ? [] : [at]
    })
  }

  // validate_change (+ cpuset1_validate_change on v1), in the kernel's order.
  const validate = (css: Css<CpusetState>, trial: Trial, ctx: FileContext): SystemError | undefined => {
    const v1 = css.cgroup.hierarchy.version === 'v1'
    if (v1) {
      for (const child of css.cgroup.children.values()) {
        const at = cssIn(child)
        if (at !== undefined && !isCpusetSubset(trialOf(at.state, {}), trial)) return ctx.refuse('EBUSY', `child ${child.path} would not be a subset`)
      }
    }
    if (css.parent === undefined) return undefined
    if (v1 && !isCpusetSubset(trial, trialOf(css.parent.state, {}))) return ctx.refuse('EACCES', 'not a subset of the parent')
    if (css.cgroup.populated || css.state.attachInProgress > 0) {
      if (css.state.cpus.length > 0 && trial.cpus.length === 0) return ctx.refuse('ENOSPC', 'cannot empty the cpus of a populated cpuset')
      if (css.state.mems.length > 0 && trial.mems.length === 0) return ctx.refuse('ENOSPC', 'cannot empty the mems of a populated cpuset')
    }
    for (const sibling of siblingsOf(css)) {
      if ((trial.cpuExclusive || sibling.state.cpuExclusive) && overlaps(trial.cpus, sibling.state.cpus)) return ctx.refuse('EINVAL', `overlaps exclusive ${sibling.cgroup.path}`)
      if ((trial.memExclusive || sibling.state.memExclusive) && overlaps(trial.mems, sibling.state.mems)) return ctx.refuse('EINVAL', `overlaps exclusive ${sibling.cgroup.path}`)
    }
    return undefined
  }

  // The affinity a task gets in a cpuset: its own request within the
  // effective CPUs if that leaves any, else the effective CPUs; all CPUs
  // without a request reads as "no restriction".
  const affinityIn = (task: Task, effective: CpuList): CpuList | undefined => {
    const requested = task.requestedAffinity
    const within = requested === undefined ? effective : intersect(requested, effective)
    const affinity = within.length > 0 ? within : effective
    return requested === undefined && affinity.length === allCpus.length ? undefined : affinity
  }

  // Recomputes effective masks below `css` (v2 inherits; v1 mirrors) and
  // rewrites the affinity of tasks whose effective CPUs changed.
  const propagate = (css: Css<CpusetState>): void => {
    for (const cgroup of css.cgroup.subtree()) {
      const at = cssIn(cgroup)
      if (at === undefined) continue
      const before = at.state.effectiveCpus
      if (at.parent === undefined || cgroup.hierarchy.version === 'v1') {
        at.state.effectiveCpus = at.state.cpus
        at.state.effectiveMems = at.state.mems
      } else {
        const cpus = intersect(at.state.cpus, at.parent.state.effectiveCpus)
        const mems = intersect(at.state.mems, at.parent.state.effectiveMems)
        at.state.effectiveCpus = cpus.length > 0 ? cpus : at.parent.state.effectiveCpus
        at.state.effectiveMems = mems.length > 0 ? mems : at.parent.state.effectiveMems
      }
      if (!sameList(before, at.state.effectiveCpus)) for (const task of cgroup.tasks()) task.affinity = affinityIn(task, at.state.effectiveCpus)
    }
  }

  const change = (css: Css<CpusetState>, update: Partial<Trial>): void => {
    Object.assign(css.state, update)
    propagate(css)
  }

  const maskFile = (name: 'cpus' | 'mems', fileName: string, all: CpuList, width: number): FileSpec<CpusetState, CpuList> => ({
    name: fileName,
    on: 'all',
    read: (css) => `${formatList(css.state[name])}\n`,
    write: {
      codec: listCodec(fileName, width),
      invalid: 'EINVAL',
      check: (css, mask, ctx) => {
        if (css.cgroup.isRoot) return ctx.refuse('EACCES', 'the top cpuset is not writable')
        if (!isSubset(mask, all)) return ctx.refuse('EINVAL', `${fileName}: outside the machine`)
        return validate(css, trialOf(css.state, { [name]: mask }), ctx)
      },
      apply: (css, mask) => change(css, { [name]: mask }),
    },
  })

  const flagFile = (name: 'cpuExclusive' | 'memExclusive', fileName: string): FileSpec<CpusetState, number> => ({
    name: fileName,
    on: 'all',
    versions: ['v1'],
    read: (css) => (css.state[name] ? '1\n' : '0\n'),
    write: {
      codec: u64,
      invalid: 'EINVAL',
      check: (css, value, ctx) => validate(css, trialOf(css.state, { [name]: value !== 0 }), ctx),
      apply: (css, value) => change(css, { [name]: value !== 0 }),
    },
  })

  const effective = (name: string, of: 'effectiveCpus' | 'effectiveMems', versions: ReadonlyArray<'v1' | 'v2'>): FileSpec<CpusetState> => ({
    name,
    on: 'all',
    versions,
    read: (css) => `${formatList(css.state[of])}\n`,
  })

  const v2Mask = (spec: FileSpec<CpusetState, CpuList>): FileSpec<CpusetState, CpuList> => ({ ...spec, on: 'nonroot', versions: ['v2'] })
  const v1Mask = (spec: FileSpec<CpusetState, CpuList>): FileSpec<CpusetState, CpuList> => ({ ...spec, versions: ['v1'] })

  const self: CpusetSubsystem = defineSubsystem<CpusetState>({
    name: 'cpuset',
    threaded: true,
    cpusAllowed: (css) => css.state.effectiveCpus,
    state: (parent, cgroup) => {
      if (parent === undefined) {
        return { cpus: allCpus, mems: allMems, effectiveCpus: allCpus, effectiveMems: allMems, cpuExclusive: true, memExclusive: true, memoryMigrate: false, attachInProgress: 0 }
      }
      if (cgroup.hierarchy.version === 'v2') {
        return { cpus: [], mems: [], effectiveCpus: parent.effectiveCpus, effectiveMems: parent.effectiveMems, cpuExclusive: false, memExclusive: false, memoryMigrate: true, attachInProgress: 0 }
      }
      // v1: empty, unless clone_children asks for the parent's masks and no sibling is exclusive.
      const siblings = [...(cgroup.parent?.children.values() ?? [])].map(cssIn)
      const clone = cgroup.parent?.cloneChildren === true && siblings.every((at) => at === undefined || (!at.state.cpuExclusive && !at.state.memExclusive))
      const cpus = clone ? parent.cpus : []
      const mems = clone ? parent.mems : []
      return { cpus, mems, effectiveCpus: cpus, effectiveMems: mems, cpuExclusive: false, memExclusive: false, memoryMigrate: false, attachInProgress: 0 }
    },
    files: [
      v1Mask(maskFile('cpus', 'cpuset.cpus', allCpus, allCpus.length)),
      v1Mask(maskFile('mems', 'cpuset.mems', allMems, MAX_NUMNODES)),
      effective('cpuset.effective_cpus', 'effectiveCpus', ['v1']),
      effective('cpuset.effective_mems', 'effectiveMems', ['v1']),
      flagFile('cpuExclusive', 'cpuset.cpu_exclusive'),
      flagFile('memExclusive', 'cpuset.mem_exclusive'),
      {
        name: 'cpuset.memory_migrate',
        on: 'all',
        versions: ['v1'],
        read: (css) => (css.state.memoryMigrate ? '1\n' : '0\n'),
        write: { codec: u64, invalid: 'EINVAL', apply: (css, value) => void (css.state.memoryMigrate = value !== 0) },
      },
      v2Mask(maskFile('cpus', 'cpuset.cpus', allCpus, allCpus.length)),
      v2Mask(maskFile('mems', 'cpuset.mems', allMems, MAX_NUMNODES)),
      effective('cpuset.cpus.effective', 'effectiveCpus', ['v2']),
      effective('cpuset.mems.effective', 'effectiveMems', ['v2']),
    ],
    attach: {
      prepareSleep: (ctx, moves) => {
        let destinations: Array<Css<CpusetState>> | undefined
        for (const move of moves) {
          const dst = move.to
          if (destinations === undefined || !destinations.includes(dst)) {
            if (dst.state.effectiveCpus.length === 0) return ctx.refuse('ENOSPC', `${dst.cgroup.path} has no cpus`)
            if (dst.cgroup.hierarchy.version === 'v1' && dst.state.effectiveMems.length === 0) return ctx.refuse('ENOSPC', `${dst.cgroup.path} has no mems`)
            if (destinations === undefined) destinations = [dst]
            else destinations.push(dst)
          }
          if (move.task.flags.noSetAffinity) return ctx.refuse('EINVAL', `task ${move.task.tid} may not change affinity`)
        }
        destinations ??= []
        for (const dst of destinations) dst.state.attachInProgress++
        ctx.privateState = destinations
        return undefined
      },
      abortSleep: (ctx) => {
        for (const dst of ctx.privateState as ReadonlyArray<Css<CpusetState>>) dst.state.attachInProgress--
      },
      commit: (ctx, moves) => {
        for (const move of moves) move.task.affinity = affinityIn(move.task, move.to.state.effectiveCpus)
        for (const dst of ctx.privateState as ReadonlyArray<Css<CpusetState>>) dst.state.attachInProgress--
      },
    },
  })
  return self
}
