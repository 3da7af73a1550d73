/**
 * A FIFO with O(1) push and shift, the shape of the kernel's worklists: works
 * are appended, taken from the head, and now and then stolen from the middle
 * by a cancel. A ring of a power-of-two size, so a steady stream of works
 * moves through it without allocating. Its head is kept inside the ring (not
 * an ever-growing position, which would leave the small-integer range after
 * 2^31 works), and removal closes the gap instead of leaving a tombstone, so
 * push and shift test nothing but emptiness and room.
 */

/** A first-in first-out list of objects. */
export class Deque<A extends object> {
  private items: Array<A | undefined> = new Array<A | undefined>(16).fill(undefined)
  private mask = 15
  // Slot of the first entry, and the number of entries.
  private head = 0
  private size = 0

  /** Number of entries. */
  get length(): number {
    return this.size
  }

  push(item: A): void {
    if (this.size > this.mask) this.grow()
    this.items[(this.head + this.size) & this.mask] = item
    this.size++
  }

  /** The first entry, removed. */
  shift(): A | undefined {
    if (this.size === 0) return undefined
    const head = this.head
    const item = this.items[head]
    this.items[head] = undefined
    this.head = (head + 1) & this.mask
    this.size--
    return item
  }

  /** The first entry, left in place. */
  peek(): A | undefined {
    return this.size === 0 ? undefined : this.items[this.head]
  }

  /** Removes `item`; false if it is not here. */
  remove(item: A): boolean {
    for (let i = 0; i < this.size; i++) {
      if (this.items[(this.head + i) & this.mask] !== item) continue
      this.close(i)
      return true
    }
    return false
  }

  /** Removes and returns every entry that satisfies `pick`, in order. */
  take(pick: (item: A) => boolean): Array<A> {
    const taken: Array<A> = []
    let kept = 0
    for (let i = 0; i < this.size; i++) {
      const item = this.items[(this.head + i) & this.mask]!
      if (pick(item)) taken.push(item)
      else this.items[(this.head + kept++) & this.mask] = item
    }
    for (let i = kept; i < this.size; i++) this.items[(this.head + i) & this.mask] = undefined
    this.size = kept
    return taken
  }

  *[Symbol.iterator](): Generator<A> {
    for (let i = 0; i < this.size; i++) yield this.items[(this.head + i) & this.mask]!
  }

  // Removes the entry at index `at`, moving the later ones forward.
  private close(at: number): void {
    for (let i = at; i + 1 < this.size; i++) this.items[(this.head + i) & this.mask] = this.items[(this.head + i + 1) & this.mask]
    this.size--
    this.items[(this.head + this.size) & this.mask] = undefined
  }

  // Doubles the ring, its entries moved to the front in order.
  private grow(): void {
    const size = this.items.length
    const items = new Array<A | undefined>(size * 2).fill(undefined)
    for (let i = 0; i < this.size; i++) items[i] = this.items[(this.head + i) & this.mask]
    this.items = items
    this.mask = size * 2 - 1
    this.head = 0
  }
}
