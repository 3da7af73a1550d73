/**
 * The hierarchical counter shared by pids and memory (the kernel's
 * `page_counter`): one counter per css linked to its parent's. A charge walks
 * every ancestor; a try-charge fails at the first level that would go over
 * its limit, rolls back the levels below it and counts the failure there.
 * Usage of a parent is therefore always the sum of what was charged in its
 * subtree, which is at least the sum of its children's usage.
 *
 * @module counter
 */

/** One level of a hierarchical counter. */
export class HierarchicalCounter {
  /** Current usage (charged here or below). */
  usage = 0
  /** Highest usage seen (watermark). */
  peak = 0
  /** Limit; `Infinity` for none. */
  limit = Number.POSITIVE_INFINITY
  /** Try-charges refused because this level was over its limit. */
  failcnt = 0

  constructor(
    /** The parent level (undefined at the root). */
    readonly parent: HierarchicalCounter | undefined,
  ) {}

  /** Charges `amount` here and on every ancestor, ignoring limits (attach, forced charges). */
  charge(amount: number): void {
    for (let at: HierarchicalCounter | undefined = this; at !== undefined; at = at.parent) {
      const usage = (at.usage += amount)
      if (usage > at.peak) at.peak = usage
    }
  }

  /**
   * Charges `amount` on every level unless one would exceed its limit: then
   * nothing stays charged, that level's `failcnt` is incremented and it is
   * returned. Returns undefined on success.
   */
  tryCharge(amount: number): HierarchicalCounter | undefined {
    let at: HierarchicalCounter | undefined = this
    for (; at !== undefined; at = at.parent) {
      const usage = at.usage + amount
      if (usage > at.limit) break
      at.usage = usage
      if (usage > at.peak) at.peak = usage
    }
    if (at === undefined) return undefined
    for (let undo: HierarchicalCounter = this; undo !== at; undo = undo.parent!) undo.usage -= amount
    at.failcnt++
    return at
  }

  /** Returns `amount` here and on every ancestor. */
  uncharge(amount: number): void {
    for (let at: HierarchicalCounter | undefined = this; at !== undefined; at = at.parent) at.usage -= amount
  }
}
