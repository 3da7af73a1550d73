/**
 * Interning of css_sets: one object per distinct (cgroups, css) tuple, kept
 * for reuse while its cgroups live.
 */
import type { Cgroup } from '../cgroup.ts'
import { CssSet, type Css } from '../cssSet.ts'

/** The host's css_sets by key; see the module comment. */
export class CssSetTable {
  private readonly byKey = new Map<string, CssSet>()
  private nextId = 1

  get size(): number {
    return this.byKey.size
  }

  values(): IterableIterator<CssSet> {
    return this.byKey.values()
  }

  /** The css_set for this tuple, created (and linked to its cgroups) if new. */
  intern(cgroups: ReadonlyArray<Cgroup>, css: ReadonlyArray<Css>): CssSet {
    let key = ''
    for (const cgroup of cgroups) key += `${cgroup.id},`
    key += '|'
    for (const one of css) key += `${one === undefined ? '-' : one.id},`
    const found = this.byKey.get(key)
    if (found !== undefined) return found
    const created = new CssSet(this.nextId++, key, cgroups, css)
    this.byKey.set(key, created)
    for (const cgroup of cgroups) cgroup.cssSets.add(created)
    return created
  }

  /** Drops every empty css_set that references `cgroup` or one of the given css. */
  dropUnused(matches: (cssSet: CssSet) => boolean): void {
    for (const [key, cssSet] of this.byKey) {
      if (!matches(cssSet) || cssSet.tasks.size > 0 || cssSet.zombies.size > 0) continue
      this.byKey.delete(key)
      for (const cgroup of cssSet.cgroups) cgroup.cssSets.delete(cssSet)
    }
  }
}
