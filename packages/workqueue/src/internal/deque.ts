/**
 * A FIFO with O(1) push and shift, the shape of the kernel's worklists: works
 * are appended, taken from the head, and now and then stolen from the middle
 * by a cancel. A ring of a power-of-two size, so a steady stream of works
 * moves through it without allocating. Its head and tail are kept inside the
 * ring (not ever-growing positions, which would leave the small-integer
 * range after 2^31 works), the ring grows the moment it fills (so head ===
 * tail means empty), and removal closes the gap instead of leaving a
 * tombstone: push and shift test nothing but emptiness and room. (They are
 * inlined into the worker loop and into queueing, which share V8's inlining
 * budget with the rest of a run, so they are written short.)
 */

/** A first-in first-out list of objects. */
export class Deque<A extends object> {
  private items: Array<A | undefined> = new Array<A | undefined>(16).fill(undefined)
  private mask = 15
  // Slot of the first entry, and the slot after the last one.
  private head = 0
  private tail = 0

  /** Number of entries. */
  get length(): number {
    return (this.tail - this.head) & this.mask
  }

  /** No entries. */
  get empty(): boolean {
    return this.head === this.tail
  }

  push(item: A): void {
    const tail = this.tail
    this.items[tail] = item
    this.tail = (tail + 1) & this.mask
    if (this.tail === this.head) this.grow()
  }

  /** The first entry, removed. */
  shift(): A | undefined {
    const head = this.head
    if (head === this.tail) return undefined
    const items = this.items
    const item = items[head]
    items[head] = undefined
    this.head = (head + 1) & this.mask
    return item
  }

  /** The first entry, left in place. */
  peek(): A | undefined {
    return this.items[this.head]
  }

  /** Removes `item`; false if it is not here. */
  remove(item: A): boolean {
    const length = this.length
    for (let i = 0; i < length; i++) {
      if (this.items[(this.head + i) & this.mask] !== item) continue
      this.close(i, length)
      return true
    }
    return false
  }

  /** Removes and returns every entry that satisfies `pick`, in order. */
  take(pick: (item: A) => boolean): Array<A> {
    const taken: Array<A> = []
    const length = this.length
    let kept = 0
    for (let i = 0; i < length; i++) {
      const item = this.items[(this.head + i) & this.mask]!
      if (pick(item)) taken.push(item)
      else this.items[(this.head + kept++) & this.mask] = item
    }
    for (let i = kept; i < length; i++) this.items[(this.head + i) & this.mask] = undefined
    this.tail = (this.head + kept) & this.mask
    return taken
  }

  *[Symbol.iterator](): Generator<A> {
    for (let i = 0; i < this.length; i++) yield this.items[(this.head + i) & this.mask]!
  }

  // Removes the entry at index `at` of `length`, moving the later ones forward.
  private close(at: number, length: number): void {
    for (let i = at; i + 1 < length; i++) this.items[(this.head + i) & this.mask] = this.items[(this.head + i + 1) & this.mask]
    this.tail = (this.tail - 1) & this.mask
    this.items[this.tail] = undefined
  }

  // The ring is full (its tail met its head): doubles it, the entries moved
  // to the front in order.
  private grow(): void {
    const size = this.items.length
    const items = new Array<A | undefined>(size * 2).fill(undefined)
    for (let i = 0; i < size; i++) items[i] = this.items[(this.head + i) & this.mask]
    this.items = items
    this.mask = size * 2 - 1
    this.head = 0
    this.tail = size
  }
}
