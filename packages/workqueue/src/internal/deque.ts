/**
 * A FIFO with O(1) push and shift and removal by identity (a tombstone), the
 * shape of the kernel's worklists: works are appended, taken from the head,
 * and now and then stolen from the middle by a cancel.
 */

/** A first-in first-out list of objects. */
export class Deque<A extends object> {
  private items: Array<A | undefined> = []
  private head = 0
  private live = 0

  /** Number of entries. */
  get length(): number {
    return this.live
  }

  push(item: A): void {
    this.items.push(item)
    this.live++
  }

  /** The first entry, removed. */
  shift(): A | undefined {
    const items = this.items
    while (this.head < items.length) {
      const item = items[this.head]
      items[this.head++] = undefined
      if (item !== undefined) {
        this.live--
        if (this.head > 1024 && this.head * 2 > items.length) this.compact()
        return item
      }
    }
    return undefined
  }

  /** The first entry, left in place. */
  peek(): A | undefined {
    for (let i = this.head; i < this.items.length; i++) if (this.items[i] !== undefined) return this.items[i]
    return undefined
  }

  /** Removes `item`; false if it is not here. */
  remove(item: A): boolean {
    const at = this.items.indexOf(item, this.head)
    if (at < 0) return false
    this.items[at] = undefined
    this.live--
    return true
  }

  /** Removes and returns every entry that satisfies `pick`, in order. */
  take(pick: (item: A) => boolean): Array<A> {
    const taken: Array<A> = []
    for (let i = this.head; i < this.items.length; i++) {
      const item = this.items[i]
      if (item !== undefined && pick(item)) {
        taken.push(item)
        this.items[i] = undefined
        this.live--
      }
    }
    return taken
  }

  *[Symbol.iterator](): Generator<A> {
    for (let i = this.head; i < this.items.length; i++) {
      const item = this.items[i]
      if (item !== undefined) yield item
    }
  }

  private compact(): void {
    this.items = this.items.slice(this.head)
    this.head = 0
  }
}
