/**
 * io-ts codecs for every option and argument the workqueue package takes.
 * Inputs are decoded before anything is touched; a failure is a
 * `BadArgument` naming the field.
 *
 * @module codecs
 */
import { CgroupRef } from '@cgtx/core'
import * as t from 'io-ts'

const NonNegative = t.refinement(t.number, (n) => Number.isFinite(n) && n >= 0, 'non-negative finite number')
const Positive = t.refinement(t.number, (n) => Number.isFinite(n) && n > 0, 'positive finite number')

/** How a cgroup-aware workqueue makes a work's resources land in the work's cgroup. */
export const Strategy = t.keyof({ migrate: null, pools: null, 'remote-charge': null }, 'Strategy')
/** A decoded {@link Strategy}. */
export type Strategy = t.TypeOf<typeof Strategy>

/**
 * Who owns a bound workqueue's threads: `shared` (CMWQ: per-CPU pools shared
 * by every workqueue), `eager` (pre-2.6.36: one dedicated thread per CPU per
 * workqueue, all created up front) or `lazy` (Axboe 2009: one core thread,
 * per-CPU threads on demand).
 */
export const Threads = t.keyof({ shared: null, eager: null, lazy: null }, 'Threads')
/** A decoded {@link Threads}. */
export type Threads = t.TypeOf<typeof Threads>

/** The `WQ_*` flags, as booleans. */
export const WorkqueueFlags = t.exact(
  t.partial({
    /** WQ_UNBOUND: unbound pools, no concurrency management. */
    unbound: t.boolean,
    /** WQ_CGROUP: works carry a cgroup; valid only with `unbound`. */
    cgroup: t.boolean,
    /** WQ_MEM_RECLAIM: a rescuer guarantees progress when no worker can be created. */
    memReclaim: t.boolean,
    /** WQ_HIGHPRI: the per-CPU high-priority pools. */
    highpri: t.boolean,
    /** WQ_CPU_INTENSIVE: running works do not hold back others on the same CPU. */
    cpuIntensive: t.boolean,
  }),
  'WorkqueueFlags',
)
/** A decoded {@link WorkqueueFlags}. */
export type WorkqueueFlags = t.TypeOf<typeof WorkqueueFlags>

/** Largest `maxActive` (`WQ_MAX_ACTIVE`); 0 asks for the default, 256. */
export const WQ_MAX_ACTIVE = 512
/** The `maxActive` that 0 stands for (`WQ_DFL_ACTIVE`). */
export const WQ_DFL_ACTIVE = 256

/** Options of {@link WorkqueueSystem.createWorkqueue}. */
export const WorkqueueOptions = t.intersection(
  [
    t.type({ name: t.refinement(t.string, (s) => s.length > 0 && s.length <= 64, 'name of 1..64 characters') }),
    t.partial({
      flags: WorkqueueFlags,
      maxActive: t.refinement(t.Int, (n) => n >= 0 && n <= WQ_MAX_ACTIVE, `Int in 0..${WQ_MAX_ACTIVE}`),
      /** alloc_ordered_workqueue: unbound, one work at a time, in queue order. */
      ordered: t.boolean,
      strategy: Strategy,
      threads: Threads,
      /** Unbound workqueues: the CPUs their workers may use (the cpumask attribute). */
      cpus: t.array(t.refinement(t.Int, (n) => n >= 0, 'cpu number')),
    }),
  ],
  'WorkqueueOptions',
)
/** A decoded {@link WorkqueueOptions}. */
export type WorkqueueOptions = t.TypeOf<typeof WorkqueueOptions>

/** Options of {@link WorkqueueSystem.create}. Times are milliseconds of the host's clock. */
export const SystemOptions = t.partial(
  {
    /** IDLE_WORKER_TIMEOUT (300 s). */
    idleTimeoutMs: Positive,
    /** CREATE_COOLDOWN (1 s): wait after a failed worker creation. */
    createCooldownMs: Positive,
    /** MAYDAY_INITIAL_TIMEOUT (10 ms) and MAYDAY_INTERVAL (100 ms). */
    maydayInitialMs: Positive,
    maydayIntervalMs: Positive,
    /** Idle time after which a lazy workqueue's per-CPU thread exits (5 s, io-wq's value). */
    lazyIdleTimeoutMs: Positive,
    /** The simulated CPU scheduler's tick (1 ms). */
    schedulerTickMs: Positive,
    /** Hierarchy whose cgroups CPU time is accounted and throttled in (default: the one binding `cpu`, else the first v2, else the first). */
    cpuHierarchy: t.string,
    /** Creates a worker's kernel thread; defaults to `host.createKernelThread`. Tests inject failures here. */
    spawnWorker: t.Function,
    /** Resource controllers workers are throttled by (see {@link Controllers}). */
    controllers: t.UnknownRecord,
  },
  'SystemOptions',
)

/** Where to queue a work on a bound workqueue. */
export const QueueOptions = t.exact(t.partial({ cpu: t.refinement(t.Int, (n) => n >= 0, 'cpu number') }), 'QueueOptions')
/** A decoded {@link QueueOptions}. */
export type QueueOptions = t.TypeOf<typeof QueueOptions>

/** One cgroup, or one per hierarchy (a combination). */
export const CgroupTarget = t.union([CgroupRef, t.array(CgroupRef)], 'CgroupTarget')
/** A decoded {@link CgroupTarget}. */
export type CgroupTarget = t.TypeOf<typeof CgroupTarget>

/** A delay in milliseconds. */
export const Delay = NonNegative
/** Simulated CPU time in milliseconds. */
export const CpuTime = NonNegative

/** A byte count: a positive safe integer. */
export const Bytes = t.refinement(t.number, (n) => Number.isSafeInteger(n) && n > 0, 'positive safe integer')
