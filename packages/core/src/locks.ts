/**
 * The model's locks. A {@link SleepLock} is a FIFO mutex whose `acquire`
 * returns nothing when the lock is free and a promise only when it must wait;
 * a {@link RwSemaphore} is the read/write variant (the thread-group lock:
 * fork, exec and exit read, migration writes); a {@link SpinLock} is taken and
 * released synchronously and can never be waited for, because in a
 * single-threaded runtime a held spin lock can only be released by the code
 * that holds it.
 *
 * Inside a transaction, subsystems take locks through the attach context,
 * which is where the lock validator watches; these classes only lock.
 *
 * @module locks
 */
import type { MaybePromise } from './internal/settle.ts'

/** Who holds or waits for a lock: any object, compared by identity. */
export type LockOwner = object

/** What kind of lock a lock is, for the validator's messages and rules. */
export type LockKind = 'sleep' | 'spin' | 'rw'

/** Common shape of the model's locks. */
export interface Lock {
  /** Lock class name; the validator orders locks by it, like lockdep. */
  readonly name: string
  readonly kind: LockKind
}

interface Waiter {
  readonly owner: LockOwner
  readonly wake: () => void
}

/** A sleeping mutex with FIFO hand-over. */
export class SleepLock implements Lock {
  readonly kind = 'sleep' as const
  private holder: LockOwner | undefined
  private readonly waiters: Array<Waiter> = []

  constructor(readonly name: string) {}

  /** The current holder, if any. */
  get owner(): LockOwner | undefined {
    return this.holder
  }

  /** Number of owners waiting. */
  get waiting(): number {
    return this.waiters.length
  }

  /** Takes the lock if it is free (and nobody queues before us). */
  tryAcquire(owner: LockOwner): boolean {
    if (this.holder !== undefined || this.waiters.length > 0) return false
    this.holder = owner
    return true
  }

  /** Takes the lock: synchronously if free, else a promise resolved on hand-over. */
  acquire(owner: LockOwner): MaybePromise<void> {
    if (this.tryAcquire(owner)) return undefined
    return new Promise<void>((resolve) => this.waiters.push({ owner, wake: resolve }))
  }

  /** Releases the lock, handing it to the first waiter. */
  release(owner: LockOwner): void {
    if (this.holder !== owner) throw new Error(`lock ${this.name} released by a non-holder`)
    if (this.waiters.length === 0) {
      this.holder = undefined
      return
    }
    const next = this.waiters.shift()
    this.holder = next?.owner
    next?.wake()
  }
}

interface RwWaiter extends Waiter {
  readonly write: boolean
}

/**
 * A reader/writer semaphore with FIFO fairness: a waiting writer holds back
 * later readers, so a stream of forks cannot starve a migration.
 */
export class RwSemaphore implements Lock {
  readonly kind = 'rw' as const
  private readers = 0
  private writer: LockOwner | undefined
  private readonly waiters: Array<RwWaiter> = []

  constructor(readonly name: string) {}

  /** The writer holding it, if any. */
  get writeOwner(): LockOwner | undefined {
    return this.writer
  }

  /** Number of readers inside. */
  get readCount(): number {
    return this.readers
  }

  tryRead(): boolean {
    if (this.writer !== undefined || this.waiters.length > 0) return false
    this.readers++
    return true
  }

  /** Enters as a reader, waiting behind a writer or queued writers. */
  read(owner: LockOwner): MaybePromise<void> {
    if (this.tryRead()) return undefined
    return new Promise<void>((resolve) => this.waiters.push({ owner, write: false, wake: resolve }))
  }

  releaseRead(): void {
    if (this.readers === 0) throw new Error(`rwsem ${this.name}: read release without readers`)
    this.readers--
    this.wakeWaiters()
  }

  tryWrite(owner: LockOwner): boolean {
    if (this.writer !== undefined || this.readers > 0 || this.waiters.length > 0) return false
    this.writer = owner
    return true
  }

  /** Enters as the writer. */
  write(owner: LockOwner): MaybePromise<void> {
    if (this.tryWrite(owner)) return undefined
    return new Promise<void>((resolve) => this.waiters.push({ owner, write: true, wake: resolve }))
  }

  releaseWrite(owner: LockOwner): void {
    if (this.writer !== owner) throw new Error(`rwsem ${this.name}: write release by a non-holder`)
    this.writer = undefined
    this.wakeWaiters()
  }

  private wakeWaiters(): void {
    if (this.waiters.length === 0) return
    while (this.writer === undefined) {
      const next = this.waiters[0]
      if (next === undefined) return
      if (next.write) {
        if (this.readers > 0) return
        this.waiters.shift()
        this.writer = next.owner
        next.wake()
        return
      }
      this.waiters.shift()
      this.readers++
      next.wake()
    }
  }
}

/** A lock that is never waited for: taking it while held is a bug, reported as such. */
export class SpinLock implements Lock {
  readonly kind = 'spin' as const
  private holder: LockOwner | undefined

  constructor(readonly name: string) {}

  get owner(): LockOwner | undefined {
    return this.holder
  }

  /** Takes the lock; returns false (nothing taken) if it is already held. */
  tryLock(owner: LockOwner): boolean {
    if (this.holder !== undefined) return false
    this.holder = owner
    return true
  }

  unlock(owner: LockOwner): void {
    if (this.holder !== owner) throw new Error(`spinlock ${this.name} released by a non-holder`)
    this.holder = undefined
  }
}
