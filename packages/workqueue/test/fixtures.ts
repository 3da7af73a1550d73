/**
 * Shared test setup: a host on a virtual clock with one v2 hierarchy and a
 * few cgroups, its workqueue system, and helpers that unwrap Eithers and let
 * the clock (and every promise chained on it) run.
 */
import * as E from 'fp-ts/lib/Either.js'
import { Host, VirtualCgroupFs, VirtualClock, type Subsystem } from '@cgtx/core'
import { WorkqueueSystem, createWork, type Work, type WorkFunction } from '../src/index.ts'

/** Unwraps a Right; a Left fails the test with its message. */
export const ok = <A>(either: E.Either<{ readonly message: string }, A>): A => {
  if (E.isLeft(either)) throw new Error(`expected Right, got ${either.left.message}`)
  return either.right
}

/** Unwraps a Left. */
export const err = <A, L>(either: E.Either<L, A>): L => {
  if (E.isRight(either)) throw new Error(`expected Left, got Right(${String(either.right)})`)
  return either.left
}

export interface Setup {
  readonly clock: VirtualClock
  readonly host: Host
  readonly system: WorkqueueSystem
}

/** A host with `unified` (v2) and cgroups /a /b /c, plus its workqueue system. */
export const setup = (
  options: Record<string, unknown> = {},
  extra: { readonly subsystems?: ReadonlyArray<Subsystem<any>>; readonly cpus?: number; readonly cgroups?: ReadonlyArray<string> } = {},
): Setup => {
  const clock = new VirtualClock()
  const host = ok(
    Host.create({
      clock,
      cpus: extra.cpus ?? 2,
      subsystems: extra.subsystems ?? [],
      hierarchies: [{ name: 'unified', version: 'v2', subsystems: (extra.subsystems ?? []).map((s) => s.name) }],
    }),
  )
  // Enable every controller for the children, so their cgroups get their own css.
  const fs = new VirtualCgroupFs(host)
  for (const subsystem of extra.subsystems ?? []) ok(fs.writeSync('/unified/cgroup.subtree_control', `+${subsystem.name}`))
  for (const path of extra.cgroups ?? ['/a', '/b', '/c']) ok(host.mkdirSync({ hierarchy: 'unified', path }))
  const system = ok(WorkqueueSystem.create(host, options))
  return { clock, host, system }
}

/** A work from a function. */
export const work = (fn: WorkFunction, name?: string): Work => ok(createWork(fn, name))

/** Lets promise chains run without moving time. */
export const settle = (clock: VirtualClock): Promise<void> => clock.advance(0)

/** A cgroup ref on the unified hierarchy. */
export const cg = (path: string): { hierarchy: string; path: string } => ({ hierarchy: 'unified', path })
