/**
 * The benchmark harness: timing by repeated samples (median of per-sample
 * means), a printed table, and `bench/results/<name>.json`. Ratios are taken
 * against a peer measured in the same run, because absolute times drift on
 * shared machines.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus, release, totalmem } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** One measured row. */
export interface Measurement {
  readonly name: string
  /**
   * Median over samples of the mean CPU time (user + system, all threads) per
   * operation, in nanoseconds. CPU time, not wall time, because these machines
   * are shared: time spent waiting for a core is not the operation's cost.
   */
  readonly medianNs: number
  /** The same median in wall-clock time. */
  readonly wallNs: number
  readonly samples: number
  readonly opsPerSample: number
  /** Extra columns (sizes, counts, bytes…). */
  readonly extra?: Readonly<Record<string, number | string>>
}

/** A ratio of two rows measured in the same run. */
export interface Ratio {
  readonly name: string
  readonly of: string
  readonly against: string
  readonly value: number
}

const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/**
 * Times `op` (synchronous) `opsPerSample` times per sample, after a warm-up,
 * and returns the median per-op time. `setup` runs before each sample, outside the timing.
 */
export const measure = (
  name: string,
  op: (i: number) => void,
  options: { readonly samples?: number; readonly opsPerSample?: number; readonly warmup?: number; readonly setup?: () => void; readonly extra?: Record<string, number | string> } = {},
): Measurement => {
  const samples = options.samples ?? 15
  const opsPerSample = options.opsPerSample ?? 10_000
  for (let i = 0; i < (options.warmup ?? opsPerSample); i++) op(i)
  const cpu: Array<number> = []
  const wall: Array<number> = []
  for (let s = 0; s < samples; s++) {
    options.setup?.()
    const startCpu = process.cpuUsage()
    const start = process.hrtime.bigint()
    for (let i = 0; i < opsPerSample; i++) op(i)
    wall.push(Number(process.hrtime.bigint() - start) / opsPerSample)
    cpu.push(cpuNs(startCpu) / opsPerSample)
  }
  return { name, medianNs: median(cpu), wallNs: median(wall), samples, opsPerSample, ...(options.extra === undefined ? {} : { extra: options.extra }) }
}

/** One contender of {@link measureAlternating}. */
export interface Case {
  readonly name: string
  readonly op: (i: number) => void
  readonly opsPerSample?: number
  readonly extra?: Record<string, number | string>
}

/**
 * Measures several synchronous contenders with their samples interleaved
 * (one sample of each in turn), so load drift on a shared machine and the
 * order of measurement hit them all alike; the first `warmupSamples` rounds
 * are discarded.
 */
export const measureAlternating = (cases: ReadonlyArray<Case>, options: { readonly samples?: number; readonly warmupSamples?: number } = {}): Array<Measurement> => {
  const samples = options.samples ?? 15
  const warmup = options.warmupSamples ?? 3
  const cpu: Array<Array<number>> = cases.map(() => [])
  const wall: Array<Array<number>> = cases.map(() => [])
  let counter = 0
  for (let s = 0; s < samples + warmup; s++) {
    for (const [i, contender] of cases.entries()) {
      const ops = contender.opsPerSample ?? 10_000
      const startCpu = process.cpuUsage()
      const start = process.hrtime.bigint()
      for (let k = 0; k < ops; k++) contender.op(counter++)
      if (s < warmup) continue
      wall[i]!.push(Number(process.hrtime.bigint() - start) / ops)
      cpu[i]!.push(cpuNs(startCpu) / ops)
    }
  }
  return cases.map((contender, i) => ({
    name: contender.name,
    medianNs: median(cpu[i]!),
    wallNs: median(wall[i]!),
    samples,
    opsPerSample: contender.opsPerSample ?? 10_000,
    ...(contender.extra === undefined ? {} : { extra: contender.extra }),
  }))
}

/** Like {@link measure} for asynchronous operations (each op awaited in turn). */
export const measureAsync = async (
  name: string,
  op: (i: number) => Promise<unknown>,
  options: { readonly samples?: number; readonly opsPerSample?: number; readonly warmup?: number; readonly setup?: () => void | Promise<void>; readonly extra?: Record<string, number | string> } = {},
): Promise<Measurement> => {
  const samples = options.samples ?? 15
  const opsPerSample = options.opsPerSample ?? 1_000
  for (let i = 0; i < (options.warmup ?? opsPerSample); i++) await op(i)
  const cpu: Array<number> = []
  const wall: Array<number> = []
  for (let s = 0; s < samples; s++) {
    await options.setup?.()
    const startCpu = process.cpuUsage()
    const start = process.hrtime.bigint()
    for (let i = 0; i < opsPerSample; i++) await op(i)
    wall.push(Number(process.hrtime.bigint() - start) / opsPerSample)
    cpu.push(cpuNs(startCpu) / opsPerSample)
  }
  return { name, medianNs: median(cpu), wallNs: median(wall), samples, opsPerSample, ...(options.extra === undefined ? {} : { extra: options.extra }) }
}

const cpuNs = (since: NodeJS.CpuUsage): number => {
  const used = process.cpuUsage(since)
  return (used.user + used.system) * 1000
}

/** Ratio of two named rows. */
export const ratio = (rows: ReadonlyArray<Measurement>, of: string, against: string, name = `${of} / ${against}`): Ratio => {
  const a = rows.find((row) => row.name === of)
  const b = rows.find((row) => row.name === against)
  if (a === undefined || b === undefined) throw new Error(`ratio: missing row ${a === undefined ? of : against}`)
  return { name, of, against, value: a.medianNs / b.medianNs }
}

/**
 * Ratio of paired samples: `of[i] / against[i]` for samples taken one right
 * after the other, and the median of those. Load on a shared machine drifts
 * over seconds; a pair shares its drift, so this ratio is steadier than the
 * ratio of two medians.
 */
export const pairedRatio = (name: string, of: string, against: string, ofSamples: ReadonlyArray<number>, againstSamples: ReadonlyArray<number>): Ratio => {
  if (ofSamples.length !== againstSamples.length || ofSamples.length === 0) throw new Error(`pairedRatio ${name}: samples do not pair`)
  return { name, of, against, value: median(ofSamples.map((value, i) => value / againstSamples[i]!)) }
}

/**
 * Two full (compacting) collections, so that what a measurement reuses sits
 * in the old generation, as a long-lived program's data does. Without them,
 * objects made just before a measurement can stay young through all of it
 * (a benchmark that allocates little never promotes them), and every store
 * of one into an older object takes V8's generational write barrier: a state
 * of the benchmark run, not a cost of the code. `pnpm bench` passes
 * `--expose-gc`.
 */
export const collectGarbage = (): void => {
  if (globalThis.gc === undefined) throw new Error('collectGarbage: run through `pnpm bench` (node --expose-gc)')
  globalThis.gc()
  globalThis.gc()
}

const formatNs = (ns: number): string => (ns >= 1e6 ? `${(ns / 1e6).toFixed(2)} ms` : ns >= 1e3 ? `${(ns / 1e3).toFixed(2)} µs` : `${ns.toFixed(1)} ns`)

/** The machine, recorded with every result. */
export const machine = (): Record<string, string | number> => ({
  node: process.version,
  kernel: release(),
  cpu: cpus()[0]?.model ?? 'unknown',
  cores: cpus().length,
  memoryGiB: Math.round(totalmem() / 2 ** 30),
})

/** Prints the table and writes `bench/results/<bench>.json`. */
export const report = (bench: string, rows: ReadonlyArray<Measurement>, ratios: ReadonlyArray<Ratio> = [], notes: Record<string, unknown> = {}): void => {
  const extraKeys = [...new Set(rows.flatMap((row) => Object.keys(row.extra ?? {})))]
  console.table(
    rows.map((row) => ({
      benchmark: row.name,
      'median (cpu)': formatNs(row.medianNs),
      'median (wall)': formatNs(row.wallNs),
      'ops/s': Math.round(1e9 / row.medianNs).toLocaleString('en-US'),
      ...Object.fromEntries(extraKeys.map((key) => [key, row.extra?.[key] ?? ''])),
    })),
  )
  if (ratios.length > 0) console.table(ratios.map((r) => ({ ratio: r.name, value: r.value.toFixed(3) })))
  const out = join(dirname(fileURLToPath(import.meta.url)), 'results', `${bench}.json`)
  mkdirSync(dirname(out), { recursive: true })
  writeFileSync(out, `${JSON.stringify({ bench, date: new Date().toISOString(), machine: machine(), rows, ratios, notes }, null, 2)}\n`)
  console.log(`wrote ${out}`)
}
