/**
 * Hierarchies and the cgroups in them. A {@link Hierarchy} is one mounted
 * tree with the subsystems bound to it, v1 (every cgroup has a css for every
 * bound subsystem) or v2 (a cgroup gets a css for a subsystem only when its
 * parent enables it in `cgroup.subtree_control`). A {@link Cgroup} keeps the
 * counters the kernel keeps: live tasks, populated children, descendants, and
 * the v2 threaded-mode state, from which `cgroup.type` and the v2 rules are
 * derived exactly as `kernel/cgroup/cgroup.c` derives them.
 *
 * @module cgroup
 */
import type { Css, CssSet } from './cssSet.ts'
import type { Subsystem } from './subsystem.ts'
import type { Task } from './task.ts'

/** Hierarchy version: v1 (legacy, one or more controllers per mount) or v2 (unified). */
export type HierarchyVersion = 'v1' | 'v2'

/** One mounted cgroup tree. */
export class Hierarchy {
  readonly root: Cgroup
  private readonly byPath = new Map<string, Cgroup>()

  constructor(
    /** Position in the host's hierarchy list (index into a css_set's cgroups). */
    readonly index: number,
    readonly name: string,
    readonly version: HierarchyVersion,
    /** The subsystems bound here, in subsystem-id order. */
    readonly subsystems: ReadonlyArray<{ readonly id: number; readonly subsystem: Subsystem }>,
    rootId: number,
  ) {
    this.root = new Cgroup(rootId, '', undefined, this)
  }

  /** True if the subsystem with this id is bound here. */
  binds(subsystemId: number): boolean {
    return this.subsystems.some((entry) => entry.id === subsystemId)
  }

  /** The cgroup at `path` (`/`, `/a/b`), if it exists and is live. */
  lookup(path: string): Cgroup | undefined {
    if (path === '/') return this.root
    if (path.charCodeAt(0) !== 0x2f) return undefined
    // Paths are looked up on every attach; remember the answers, forgetting removed cgroups.
    const cached = this.byPath.get(path)
    if (cached !== undefined) {
      if (!cached.dead) return cached
      this.byPath.delete(path)
    }
    let at: Cgroup | undefined = this.root
    for (const name of path.slice(1).split('/')) {
      at = at.children.get(name)
      if (at === undefined) return undefined
    }
    this.byPath.set(path, at)
    return at
  }
}

/** The four values `cgroup.type` reads. */
export type CgroupType = 'domain' | 'domain threaded' | 'domain invalid' | 'threaded'

/** One cgroup. Counters are maintained by the host; read them, do not write them. */
export class Cgroup {
  readonly children = new Map<string, Cgroup>()
  readonly level: number
  /** Path inside the hierarchy: `/` for the root, else `/a/b` (names never change, so it is computed once). */
  readonly path: string
  /** Set by rmdir; a dead cgroup refuses new tasks with ENODEV. */
  dead = false
  /** The css this cgroup owns, by subsystem id (v2: only for enabled subsystems). */
  readonly ownCss: Array<Css | undefined> = []
  /** css_sets that reference this cgroup; their live tasks are this cgroup's tasks. */
  readonly cssSets = new Set<CssSet>()
  /** Live tasks directly in this cgroup. */
  nrTasks = 0
  /** Children that are populated. */
  nrPopulatedChildren = 0
  /** Live descendants and removed-but-referenced ones (v2 `cgroup.stat`). */
  nrDescendants = 0
  nrDyingDescendants = 0
  /** v2 limits on the subtree below (`cgroup.max.depth`, `cgroup.max.descendants`). */
  maxDepth = Number.POSITIVE_INFINITY
  maxDescendants = Number.POSITIVE_INFINITY
  /** v2: `cgroup.type` was set to `threaded`. */
  threaded = false
  /** v2: children that are threaded. */
  nrThreadedChildren = 0
  /** v2: subsystem ids enabled for the children (`cgroup.subtree_control`). */
  readonly subtreeControl = new Set<number>()
  /** v1 `cgroup.clone_children` and `notify_on_release`. */
  cloneChildren = false
  notifyOnRelease = false
  /** Frozen state, as `cgroup.events` reports it; maintained by a freezer. */
  frozen = false

  constructor(
    readonly id: number,
    readonly name: string,
    readonly parent: Cgroup | undefined,
    readonly hierarchy: Hierarchy,
  ) {
    this.level = parent === undefined ? 0 : parent.level + 1
    this.path = parent === undefined ? '/' : parent.path === '/' ? `/${name}` : `${parent.path}/${name}`
  }


  /** This cgroup or a descendant has a live task. */
  get populated(): boolean {
    return this.nrTasks > 0 || this.nrPopulatedChildren > 0
  }

  get isRoot(): boolean {
    return this.parent === undefined
  }

  /** The css that tasks of this cgroup use for a subsystem: its own or the nearest ancestor's. */
  effectiveCss(subsystemId: number): Css | undefined {
    for (let at: Cgroup | undefined = this; at !== undefined; at = at.parent) {
      const css = at.ownCss[subsystemId]
      if (css !== undefined) return css
    }
    return undefined
  }

  /** Live tasks directly in this cgroup, in no particular order. */
  *tasks(): Generator<Task> {
    for (const cssSet of this.cssSets) for (const task of cssSet.tasks) yield task
  }

  /** Descendants in pre-order, this cgroup first. */
  *subtree(): Generator<Cgroup> {
    yield this
    for (const child of this.children.values()) yield* child.subtree()
  }

  /** v2: the thread-domain cgroup (itself unless threaded, else its thread root). */
  get domain(): Cgroup {
    let at: Cgroup = this
    while (at.threaded && at.parent !== undefined) at = at.parent
    return at
  }

  /** v2: has threaded children. */
  get isThreadRoot(): boolean {
    return this.nrThreadedChildren > 0
  }

  /** v2 `cgroup_is_valid_domain`: can this cgroup host domain resources? */
  get isValidDomain(): boolean {
    if (this.threaded) return false
    for (let at = this.parent; at !== undefined; at = at.parent) {
      if (at.parent !== undefined && at.isThreadRoot) return false
      if (at.threaded) return false
    }
    return true
  }

  /** v2 `cgroup_can_be_thread_root`. */
  canBeThreadRoot(threadedSubsystems: ReadonlySet<number>): boolean {
    if (this.parent === undefined) return true
    if (this.threaded) return false
    for (const child of this.children.values()) if (!child.threaded && child.populated) return false
    for (const id of this.subtreeControl) if (!threadedSubsystems.has(id)) return false
    return true
  }

  /** What `cgroup.type` reads. */
  get type(): CgroupType {
    if (this.threaded) return 'threaded'
    if (!this.isValidDomain) return 'domain invalid'
    if (this.isThreadRoot) return 'domain threaded'
    return 'domain'
  }
}
