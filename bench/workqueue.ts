/**
 * `pnpm bench workqueue`: the workqueue package.
 *
 * - throughput of no-op works on a plain (per-CPU) workqueue, against fastq
 *   (synchronous worker, callback API) and p-queue measured in the same run,
 *   each pair in a phase of its own (samples back to back); the unbound
 *   workqueue likewise, and the per-CPU one again after it;
 * - the cost of cgroup awareness (`migrate`) for works that burn 50 µs of
 *   real CPU each, spread in random order over 100 cgroups, against the same
 *   works on a plain unbound workqueue (target ≤ 5 %), as the median of the
 *   ratios of samples taken back to back;
 * - the cost per no-op cgroup work split into queueing, migration and running;
 * - the number of workers when 10,000 cgroups queue works, `migrate` against
 *   `pools` (virtual clock), with an SVG plot next to the results;
 * - the threads of an idle host with N workqueues: eager, lazy, shared (CMWQ).
 */
import { createRequire } from 'node:module'
import { writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import * as E from 'fp-ts/lib/Either.js'
import { Host, VirtualClock, type Clock } from '@cgtx/core'
import {
  WorkqueueSystem,
  createWork,
  flushWorkqueue,
  queueCgroupWork,
  queueWork,
  type Strategy,
  type Work,
  type Workqueue,
} from '@cgtx/workqueue'
import { collectGarbage, pairedRatio, report, type Measurement, type Ratio } from './harness.ts'

// The peers are dev dependencies of the workqueue package.
const requireFromWorkqueue = createRequire(new URL('../packages/workqueue/package.json', import.meta.url))
type Fastq = (worker: (arg: unknown, done: (error: Error | null) => void) => void, concurrency: number) => {
  push(arg: unknown, done: () => void): void
  idle(): boolean
  drain: () => void
}
const fastq = requireFromWorkqueue('fastq') as Fastq
const { default: PQueue } = (await import(pathToFileURL(requireFromWorkqueue.resolve('p-queue')).href)) as {
  default: new (options: { concurrency: number }) => { add(fn: () => void): Promise<void>; onIdle(): Promise<void> }
}

const get = <A>(either: E.Either<{ readonly message: string }, A>): A => {
  if (E.isLeft(either)) throw new Error(either.left.message)
  return either.right
}

// Real time, with timers that do not keep the process alive (idle-worker timers run for minutes).
const benchClock: Clock = {
  now: () => performance.now(),
  setTimer: (ms, callback) => {
    const handle = setTimeout(callback, ms)
    handle.unref()
    return { cancel: () => clearTimeout(handle) }
  },
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms).unref()),
}

const hostWith = (cgroups: number, clock: Clock, cpus = 4): Host => {
  const host = get(Host.create({ clock, cpus, hierarchies: [{ name: 'unified', version: 'v2' }] }))
  for (let i = 0; i < cgroups; i++) get(host.mkdirSync({ hierarchy: 'unified', path: `/g${i}` }))
  return host
}

const BATCH = 10_000

// --------------------------------------------------------------- throughput

// Times `batch` of `works` works: its CPU and wall time per work (ns).
const timeBatch = async (batch: () => Promise<void>, works = BATCH): Promise<[number, number]> => {
  const startCpu = process.cpuUsage()
  const start = process.hrtime.bigint()
  await batch()
  const wall = Number(process.hrtime.bigint() - start) / works
  const used = process.cpuUsage(startCpu)
  return [((used.user + used.system) * 1000) / works, wall]
}

// Samples of two contenders taken back to back, in alternating order, after
// a warm-up and a full collection (see collectGarbage). `renew`, if given,
// runs before every batch, warm-up included, outside the timing.
const pairOff = async (
  first: () => Promise<void>,
  second: () => Promise<void>,
  samples: number,
  renew?: () => void,
): Promise<[Array<[number, number]>, Array<[number, number]>]> => {
  for (let s = 0; s < 3; s++) {
    for (const batch of [first, second]) {
      renew?.()
      await batch()
    }
  }
  collectGarbage()
  const a: Array<[number, number]> = []
  const b: Array<[number, number]> = []
  for (let s = 0; s < samples; s++) {
    const order: Array<[() => Promise<void>, Array<[number, number]>]> = s % 2 === 0 ? [[first, a], [second, b]] : [[second, b], [first, a]]
    for (const [batch, into] of order) {
      renew?.()
      into.push(await timeBatch(batch))
    }
  }
  return [a, b]
}

const median = (values: Array<number>): number => [...values].sort((a, b) => a - b)[values.length >> 1]!

/**
 * Each contender is paired with its peer in a phase of its own, samples
 * back to back. One process holds them all, and V8 compiles the workqueue
 * code once for every kind that has run: per-CPU queueing after the unbound
 * workqueue has run carries the unbound branches too. So the per-CPU figure
 * against fastq is taken first, and again after the unbound phase (the
 * figure of a program that uses both kinds).
 *
 * The works are made once and reused, like work_structs embedded in
 * long-lived objects; each phase starts from a full collection, so they are
 * old, as such works are. The last phase makes new items before every
 * sample instead (new works; new argument objects for fastq): the cost of
 * queueing works made just before, young when queued. It comes last because
 * object arguments change fastq's compiled code from then on.
 */
const throughput = async (): Promise<{ rows: Array<Measurement>; ratios: Array<Ratio> }> => {
  const host = hostWith(0, benchClock)
  const system = get(WorkqueueSystem.create(host))
  const bound = get(system.createWorkqueue({ name: 'events' }))
  const unbound = get(system.createWorkqueue({ name: 'unbound', flags: { unbound: true } }))
  const works = Array.from({ length: BATCH }, () => get(createWork(() => undefined)))
  const batchOn = (wq: Workqueue) => async (): Promise<void> => {
    for (let i = 0; i < BATCH; i++) queueWork(wq, works[i]!)
    await flushWorkqueue(wq)
  }
  const queue = fastq((_arg, done) => done(null), 1)
  const noop = (): void => undefined
  const fastqBatch = async (): Promise<void> => {
    for (let i = 0; i < BATCH; i++) queue.push(i, noop)
    if (!queue.idle()) await new Promise<void>((resolve) => (queue.drain = resolve))
  }
  const pqueue = new PQueue({ concurrency: 1 })
  const pqueueBatch = async (): Promise<void> => {
    for (let i = 0; i < BATCH; i++) void pqueue.add(noop)
    await pqueue.onIdle()
  }
  const row = (name: string, samples: Array<[number, number]>): Measurement => ({
    name,
    medianNs: median(samples.map((sample) => sample[0])),
    wallNs: median(samples.map((sample) => sample[1])),
    samples: samples.length,
    opsPerSample: BATCH,
    extra: { batch: BATCH },
  })
  const cpuOf = (samples: Array<[number, number]>): Array<number> => samples.map((sample) => sample[0])
  const FASTQ = 'fastq no-op (sync worker)'
  const PERCPU = 'workqueue no-op (per-CPU)'
  const UNBOUND = 'workqueue no-op (unbound)'
  const MIXED = 'workqueue no-op (per-CPU, after unbound ran)'
  const [percpu, fastqA] = await pairOff(batchOn(bound), fastqBatch, 41)
  const [unboundRun, fastqB] = await pairOff(batchOn(unbound), fastqBatch, 41)
  const [mixed, fastqC] = await pairOff(batchOn(bound), fastqBatch, 41)
  const [percpuD, pqueueRun] = await pairOff(batchOn(bound), pqueueBatch, 11)
  let youngWorks: Array<Work> = []
  let youngArgs: Array<{ readonly i: number }> = []
  const renew = (): void => {
    youngWorks = Array.from({ length: BATCH }, () => get(createWork(() => undefined)))
    youngArgs = Array.from({ length: BATCH }, (_, i) => ({ i }))
  }
  const youngBatch = async (): Promise<void> => {
    for (let i = 0; i < BATCH; i++) queueWork(bound, youngWorks[i]!)
    await flushWorkqueue(bound)
  }
  const youngFastqBatch = async (): Promise<void> => {
    for (let i = 0; i < BATCH; i++) queue.push(youngArgs[i], noop)
    if (!queue.idle()) await new Promise<void>((resolve) => (queue.drain = resolve))
  }
  const YOUNG = 'workqueue no-op (per-CPU), works made just before'
  const YOUNG_FASTQ = 'fastq no-op, argument objects made just before'
  const [young, youngFastq] = await pairOff(youngBatch, youngFastqBatch, 41, renew)
  return {
    rows: [
      row(FASTQ, fastqA),
      row(PERCPU, percpu),
      row(UNBOUND, unboundRun),
      row(MIXED, mixed),
      row('p-queue no-op', pqueueRun),
      row(YOUNG_FASTQ, youngFastq),
      row(YOUNG, young),
    ],
    ratios: [
      pairedRatio('per-CPU workqueue / fastq (target ≤ 1)', PERCPU, FASTQ, cpuOf(percpu), cpuOf(fastqA)),
      pairedRatio('unbound workqueue / fastq', UNBOUND, FASTQ, cpuOf(unboundRun), cpuOf(fastqB)),
      pairedRatio('per-CPU workqueue / fastq, after unbound ran', MIXED, FASTQ, cpuOf(mixed), cpuOf(fastqC)),
      pairedRatio('per-CPU workqueue / p-queue', PERCPU, 'p-queue no-op', cpuOf(percpuD), cpuOf(pqueueRun)),
      pairedRatio('per-CPU workqueue / fastq, items made just before', YOUNG, YOUNG_FASTQ, cpuOf(young), cpuOf(youngFastq)),
    ],
  }
}

// ----------------------------------------------------- migrate overhead, 50 µs

// A work burns 50 µs by spinning on the clock. A fixed number of loop
// iterations was tried first, but V8 inlines the loop into whichever worker
// path calls it and compiles it differently there: the same iterations once
// ran 66 % slower under `migrate` than under the plain workqueue, which
// measured the compiler, not the workqueue.
let spins = 0
const spin = (us: number): void => {
  const until = performance.now() + us / 1000
  while (performance.now() < until) spins++
}

const shuffled = (n: number, cgroups: number, seed: number): Array<number> => {
  let state = seed
  return Array.from({ length: n }, () => {
    state = (state * 1103515245 + 12345) % 2 ** 31
    return state % cgroups
  })
}

const overhead = async (): Promise<{ rows: Array<Measurement>; ratios: Array<Ratio> }> => {
  const N = 400
  const host = hostWith(100, benchClock)
  const system = get(WorkqueueSystem.create(host))
  const plain = get(system.createWorkqueue({ name: 'plain', flags: { unbound: true } }))
  const migrate = get(system.createWorkqueue({ name: 'migrate', flags: { unbound: true, cgroup: true } }))
  const order = shuffled(N, 100, 7).map((i) => ({ hierarchy: 'unified', path: `/g${i}` }))
  const works = Array.from({ length: N }, () => get(createWork(() => spin(50))))
  const plainBatch = async (): Promise<void> => {
    for (let i = 0; i < N; i++) queueWork(plain, works[i]!)
    await flushWorkqueue(plain)
  }
  const migrateBatch = async (): Promise<void> => {
    for (let i = 0; i < N; i++) queueCgroupWork(migrate, works[i]!, order[i])
    await flushWorkqueue(migrate)
  }
  // The same with Cgroup objects instead of refs: no decoding of the target.
  const objects = order.map((ref) => get(host.cgroup(ref)))
  const objectBatch = async (): Promise<void> => {
    for (let i = 0; i < N; i++) queueCgroupWork(migrate, works[i]!, objects[i])
    await flushWorkqueue(migrate)
  }
  // The three alternate, each round in another order, so drift and position hit all alike.
  const samples = 41
  const batches: Array<[keyof typeof runs, () => Promise<void>]> = [
    ['plain', plainBatch],
    ['migrate', migrateBatch],
    ['objects', objectBatch],
  ]
  const runs = { plain: [] as Array<[number, number]>, migrate: [] as Array<[number, number]>, objects: [] as Array<[number, number]> }
  for (let s = 0; s < samples + 3; s++) {
    if (s === 3) collectGarbage()
    for (let k = 0; k < batches.length; k++) {
      const [name, batch] = batches[(s + k) % batches.length]!
      const sample = await timeBatch(batch, N)
      if (s >= 3) runs[name].push(sample)
    }
  }
  const row = (name: string, values: Array<[number, number]>): Measurement => ({
    name,
    medianNs: median(values.map((v) => v[0])),
    wallNs: median(values.map((v) => v[1])),
    samples,
    opsPerSample: N,
    extra: { works: N, cgroups: 100 },
  })
  const cpuOf = (values: Array<[number, number]>): Array<number> => values.map((v) => v[0])
  return {
    rows: [
      row('plain unbound, 50 µs works', runs.plain),
      row('migrate, 50 µs works over 100 cgroups', runs.migrate),
      row('migrate, 50 µs works, Cgroup objects', runs.objects),
    ],
    ratios: [
      pairedRatio('migrate / plain, 50 µs works (target ≤ 1.05)', 'migrate, 50 µs works over 100 cgroups', 'plain unbound, 50 µs works', cpuOf(runs.migrate), cpuOf(runs.plain)),
      pairedRatio('migrate (Cgroup objects) / plain, 50 µs works', 'migrate, 50 µs works, Cgroup objects', 'plain unbound, 50 µs works', cpuOf(runs.objects), cpuOf(runs.plain)),
    ],
  }
}

// ------------------------------------------------------ no-op cost breakdown

const breakdown = async (): Promise<{ rows: Array<Measurement>; notes: Record<string, number> }> => {
  const N = 5_000
  const host = hostWith(100, benchClock)
  const system = get(WorkqueueSystem.create(host))
  const order = shuffled(N, 100, 11).map((i) => ({ hierarchy: 'unified', path: `/g${i}` }))
  const works = Array.from({ length: N }, () => get(createWork(() => undefined)))
  const wqs: Record<Strategy, Workqueue> = {
    migrate: get(system.createWorkqueue({ name: 'migrate', flags: { unbound: true, cgroup: true } })),
    'remote-charge': get(system.createWorkqueue({ name: 'remote', flags: { unbound: true, cgroup: true }, strategy: 'remote-charge' })),
    pools: get(system.createWorkqueue({ name: 'pools', flags: { unbound: true, cgroup: true }, strategy: 'pools' })),
  }
  const samples = 15
  const split = { queue: [] as Array<number>, migrate: [] as Array<number>, remote: [] as Array<number> }
  // CPU time (user + system), like the harness: waiting for a shared core is not a cost.
  const cpuNow = (): number => {
    const used = process.cpuUsage()
    return (used.user + used.system) * 1000
  }
  const once = async (wq: Workqueue): Promise<{ queue: number; total: number }> => {
    const start = cpuNow()
    for (let i = 0; i < N; i++) queueCgroupWork(wq, works[i]!, order[i])
    const queued = cpuNow()
    await flushWorkqueue(wq)
    const end = cpuNow()
    return { queue: (queued - start) / N, total: (end - start) / N }
  }
  for (let s = 0; s < samples + 2; s++) {
    if (s === 2) collectGarbage()
    const migrated = await once(wqs.migrate)
    const remote = await once(wqs['remote-charge'])
    if (s < 2) continue
    split.queue.push(migrated.queue)
    split.migrate.push(migrated.total)
    split.remote.push(remote.total)
  }
  const queueNs = median(split.queue)
  const migrateNs = median(split.migrate)
  const remoteNs = median(split.remote)
  const runningNs = remoteNs - queueNs
  const migrationNs = migrateNs - remoteNs
  const row = (name: string, ns: number): Measurement => ({ name, medianNs: ns, wallNs: Number.NaN, samples, opsPerSample: N })
  return {
    rows: [
      row('no-op cgroup work: queueing', queueNs),
      row('no-op cgroup work: migration', migrationNs),
      row('no-op cgroup work: running', runningNs),
      row('no-op cgroup work: total (migrate)', migrateNs),
      row('no-op cgroup work: total (remote-charge)', remoteNs),
    ],
    notes: { queueNs, migrationNs, runningNs, migrateNs, remoteChargeNs: remoteNs },
  }
}

// --------------------------------------------- workers with 10,000 cgroups

const workersFor = async (cgroups: number, strategy: Strategy): Promise<{ peak: number; after: number }> => {
  const clock = new VirtualClock()
  const host = hostWith(cgroups, clock, 8)
  const system = get(WorkqueueSystem.create(host, { idleTimeoutMs: 1_000 }))
  const wq = get(system.createWorkqueue({ name: 'cg', flags: { unbound: true, cgroup: true }, strategy, maxActive: 64 }))
  const order = shuffled(cgroups, cgroups, 3)
  const baseline = system.workerTasks().length
  let peak = 0
  // Every cgroup queues one work that sleeps 1..10 ms, all at once.
  for (let i = 0; i < cgroups; i++) {
    const ms = 1 + (order[i]! % 10)
    const work: Work = get(createWork(async () => void (await clock.sleep(ms))))
    queueCgroupWork(wq, work, { hierarchy: 'unified', path: `/g${i}` })
  }
  while (wq.inFlight > 0) {
    await clock.advance(1)
    peak = Math.max(peak, system.workerTasks().length - baseline)
  }
  await clock.advance(2_000)
  return { peak, after: system.workerTasks().length - baseline }
}

const plot = (points: ReadonlyArray<{ cgroups: number; migrate: number; pools: number }>): string => {
  const width = 640
  const height = 400
  const left = 70
  const bottom = 50
  const maxX = Math.max(...points.map((p) => p.cgroups))
  const maxY = Math.max(...points.map((p) => Math.max(p.migrate, p.pools)))
  const x = (v: number): number => left + ((width - left - 20) * v) / maxX
  const y = (v: number): number => height - bottom - ((height - bottom - 30) * v) / maxY
  const line = (key: 'migrate' | 'pools', color: string): string =>
    `<polyline fill="none" stroke="${color}" stroke-width="2" points="${points.map((p) => `${x(p.cgroups).toFixed(1)},${y(p[key]).toFixed(1)}`).join(' ')}"/>` +
    points.map((p) => `<circle cx="${x(p.cgroups).toFixed(1)}" cy="${y(p[key]).toFixed(1)}" r="3" fill="${color}"/>`).join('')
  const ticksX = points.map((p) => `<text x="${x(p.cgroups).toFixed(1)}" y="${height - bottom + 18}" font-size="11" text-anchor="middle">${p.cgroups}</text>`).join('')
  const ticksY = [0, 0.25, 0.5, 0.75, 1]
    .map((f) => Math.round(maxY * f))
    .map((v) => `<text x="${left - 8}" y="${y(v) + 4}" font-size="11" text-anchor="end">${v}</text><line x1="${left}" x2="${width - 20}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/>`)
    .join('')
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
<text x="${width / 2}" y="18" font-size="14" text-anchor="middle">Peak workers vs cgroups queueing works (max_active 64)</text>
${ticksY}
<line x1="${left}" x2="${left}" y1="30" y2="${height - bottom}" stroke="black"/>
<line x1="${left}" x2="${width - 20}" y1="${height - bottom}" y2="${height - bottom}" stroke="black"/>
${ticksX}
<text x="${width / 2}" y="${height - 12}" font-size="12" text-anchor="middle">cgroups</text>
<text x="16" y="${height / 2}" font-size="12" text-anchor="middle" transform="rotate(-90 16 ${height / 2})">peak workers</text>
${line('pools', '#c0392b')}${line('migrate', '#2471a3')}
<text x="${left + 10}" y="44" font-size="12" fill="#c0392b">pools (a pool per cgroup)</text>
<text x="${left + 10}" y="60" font-size="12" fill="#2471a3">migrate (one shared pool)</text>
</svg>
`
}

// ------------------------------------------------- idle threads, eager/lazy

const idleThreads = (wqs: number, cpus: number, threads: 'eager' | 'lazy' | 'shared'): number => {
  const host = hostWith(0, new VirtualClock(), cpus)
  const system = get(WorkqueueSystem.create(host))
  for (let i = 0; i < wqs; i++) get(system.createWorkqueue({ name: `wq${i}`, threads }))
  return system.workerTasks().length
}

export const run = async (): Promise<void> => {
  const rows: Array<Measurement> = []
  const ratios: Array<Ratio> = []
  const notes: Record<string, unknown> = {}

  const tp = await throughput()
  rows.push(...tp.rows)
  ratios.push(...tp.ratios)

  const ov = await overhead()
  rows.push(...ov.rows)
  ratios.push(...ov.ratios)

  const split = await breakdown()
  rows.push(...split.rows)
  notes.noopSplitNs = split.notes

  const counts: Array<{ cgroups: number; migrate: number; pools: number; migrateAfterIdle: number; poolsAfterIdle: number }> = []
  for (const cgroups of [100, 1_000, 2_500, 5_000, 10_000]) {
    const migrate = await workersFor(cgroups, 'migrate')
    const pools = await workersFor(cgroups, 'pools')
    counts.push({ cgroups, migrate: migrate.peak, pools: pools.peak, migrateAfterIdle: migrate.after, poolsAfterIdle: pools.after })
  }
  console.table(counts)
  notes.workersWithCgroups = counts
  const svg = join(dirname(fileURLToPath(import.meta.url)), 'results', 'workqueue-workers.svg')
  writeFileSync(svg, plot(counts))
  console.log(`wrote ${svg}`)

  const threads = [10, 100].map((wqs) => ({
    workqueues: wqs,
    cpus: 8,
    eager: idleThreads(wqs, 8, 'eager'),
    lazy: idleThreads(wqs, 8, 'lazy'),
    shared: idleThreads(wqs, 8, 'shared'),
  }))
  console.table(threads)
  notes.idleThreads = threads

  report('workqueue', rows, ratios, notes)
}
