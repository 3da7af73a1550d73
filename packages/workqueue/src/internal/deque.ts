/**
 * A FIFO with O(1) push and shift and removal by identity (a tombstone), the
 * shape of the kernel's worklists: works are appended, taken from the head,
 * and now and then stolen from the middle by a cancel. A ring of a power-of-two
 * size: a steady stream of works moves through it without allocating.
 */

/** A first-in first-out list of objects. */
export class Deque<A extends object> {
  private items: Array<A | undefined> = new Array<A | undefined>(16).fill(undefined)
  private mask = 15
  // Positions of the first slot and one past the last; they only grow (slot = position & mask).
  private head = 0
  private tail = 0
  private live = 0

  /** Number of entries. */
  get length(): number {
    return this.live
  }

  push(item: A): void {
    if (this.tail - this.head > this.mask) this.grow()
    this.items[this.tail & this.mask] = item
    this.tail++
    this.live++
  }

  /** The first entry, removed. */
  shift(): A | undefined {
    if (this.live === 0) return undefined
    const { items, mask } = this
    for (;;) {
      const at = this.head & mask
      const item = items[at]
      items[at] = undefined
      this.head++
      // Tombstones left by `remove` are skipped.
      if (item !== undefined) {
        this.live--
        return item
      }
    }
  }

  /** The first entry, left in place. */
  peek(): A | undefined {
    for (let at = this.head; at < this.tail; at++) {
      const item = this.items[at & this.mask]
      if (item !== undefined) return item
    }
    return undefined
  }

  /** Removes `item`; false if it is not here. */
  remove(item: A): boolean {
    for (let at = this.head; at < this.tail; at++) {
      if (this.items[at & this.mask] !== item) continue
      this.items[at & this.mask] = undefined
      this.live--
      return true
    }
    return false
  }

  /** Removes and returns every entry that satisfies `pick`, in order. */
  take(pick: (item: A) => boolean): Array<A> {
    const taken: Array<A> = []
    for (let at = this.head; at < this.tail; at++) {
      const item = this.items[at & this.mask]
      if (item !== undefined && pick(item)) {
        taken.push(item)
        this.items[at & this.mask] = undefined
        this.live--
      }
    }
    return taken
  }

  *[Symbol.iterator](): Generator<A> {
    for (let at = this.head; at < this.tail; at++) {
      const item = this.items[at & this.mask]
      if (item !== undefined) yield item
    }
  }

  // Doubles the ring, its entries (tombstones included) moved to the front in order.
  private grow(): void {
    const size = this.items.length
    const items = new Array<A | undefined>(size * 2).fill(undefined)
    for (let i = 0; i < size; i++) items[i] = this.items[(this.head + i) & this.mask]
    this.items = items
    this.mask = size * 2 - 1
    this.tail -= this.head
    this.head = 0
  }
}
