/**
 * css and css_sets. A {@link Css} is one subsystem's state in one cgroup; a
 * {@link CssSet} is the interned tuple of one cgroup per hierarchy plus the
 * css each subsystem uses there. Every task points at one css_set, so a
 * migration is a pointer switch and tasks that share cgroups share memory.
 * Empty css_sets are kept for reuse (and their transitions cached) until one
 * of their cgroups is removed, so moving a task back and forth allocates
 * nothing after the first round trip.
 *
 * @module cssSet
 */
import type { Cgroup } from './cgroup.ts'
import type { ChangedSubsystems } from './internal/migration.ts'
import type { Subsystem } from './subsystem.ts'
import { TaskList } from './taskList.ts'

/** One subsystem's state in one cgroup. */
export class Css<S = unknown> {
  /** False once the cgroup was removed or the subsystem disabled there. */
  online = true

  constructor(
    readonly id: number,
    readonly subsystem: Subsystem<S>,
    /** Position of the subsystem in the host's list; callbacks run in this order. */
    readonly subsystemId: number,
    readonly cgroup: Cgroup,
    /** The parent cgroup's css for the same subsystem (undefined at a root). */
    readonly parent: Css<S> | undefined,
    readonly state: S,
  ) {}

  /** This css and its ancestors, innermost first: the chain hierarchical counters charge. */
  *ancestry(): Generator<Css<S>> {
    for (let at: Css<S> | undefined = this; at !== undefined; at = at.parent) yield at
  }
}

/** An interned (cgroup per hierarchy, css per subsystem) tuple. */
export class CssSet {
  /** Running and exiting tasks, in the order they joined. */
  readonly tasks = new TaskList()
  /** Zombies: still referencing this css_set until reaped. */
  readonly zombies = new TaskList()
  /** Cached single-hierarchy moves: destination cgroup → resulting css_set. */
  readonly moves = new Map<Cgroup, CssSet>()
  /** Cached subsystem ids whose css differs from another css_set's, by that css_set. */
  readonly changed = new Map<CssSet, ChangedSubsystems>()
  /** Host css generation the caches were filled in. */
  movesGeneration = 0

  constructor(
    readonly id: number,
    readonly key: string,
    /** By hierarchy index. */
    readonly cgroups: ReadonlyArray<Cgroup>,
    /** By subsystem id. */
    readonly css: ReadonlyArray<Css>,
  ) {}

  /** The cgroup in the hierarchy with this index. */
  cgroup(hierarchyIndex: number): Cgroup {
    return this.cgroups[hierarchyIndex]!
  }
}
