/**
 * The lock validator: the rules the RFC sets for locks taken inside an
 * attach transaction, checked on every acquisition.
 *
 * - `shared-in-prepareSleep`: two subsystems may not take the same lock in
 *   prepareSleep (the second would wait for the first forever, since locks
 *   are held until commit or abort). The mmap lock is exempt when taken
 *   through the recursion-counted helper.
 * - `sleep-in-spin`: the spin phase may not take a sleeping lock.
 * - `spin-contended`: a spin lock found held can never be released (the
 *   holder cannot run), so taking it is a deadlock.
 * - `order-cycle`: like lockdep, every "held A while taking B" adds an edge
 *   A → B between lock classes (names) across all transactions; an edge that
 *   closes a cycle is refused and reported with the cycle.
 *
 * @module lockValidator
 */
import type { Lock } from './locks.ts'

/** Which rule a violation broke. */
export type LockRule = 'shared-in-prepareSleep' | 'sleep-in-spin' | 'spin-contended' | 'order-cycle'

/** One broken lock rule. */
export interface LockViolation {
  readonly rule: LockRule
  readonly transaction: number
  readonly subsystem: string
  readonly phase: string
  /** The lock being taken. */
  readonly lock: string
  /** For `shared-in-prepareSleep`: the subsystem already holding it. */
  readonly holder?: string
  /** For `order-cycle`: the lock classes around the cycle, first repeated last. */
  readonly cycle?: ReadonlyArray<string>
  readonly message: string
}

/** Records lock-order edges and the violations found; one per host. */
export class LockValidator {
  private readonly edges = new Map<string, Set<string>>()
  private readonly found: Array<LockViolation> = []

  constructor(readonly maxViolations = 1000) {}

  /** Every violation seen so far (most recent last, bounded). */
  get violations(): ReadonlyArray<LockViolation> {
    return this.found
  }

  /** Forgets recorded violations (the order graph is kept). */
  clearViolations(): void {
    this.found.length = 0
  }

  /** The recorded "A before B" pairs, for inspection. */
  orderEdges(): ReadonlyArray<readonly [string, string]> {
    const out: Array<readonly [string, string]> = []
    for (const [from, tos] of this.edges) for (const to of tos) out.push([from, to])
    return out
  }

  /** Keeps a violation and returns it. */
  report(violation: Omit<LockViolation, 'message'>): LockViolation {
    const full: LockViolation = { ...violation, message: describeViolation(violation) }
    this.found.push(full)
    if (this.found.length > this.maxViolations) this.found.shift()
    return full
  }

  /**
   * Checks taking `lock` while `held` are held; records the new order edges
   * if they close no cycle, else returns the cycle (nothing recorded).
   */
  checkOrder(held: Iterable<Lock>, lock: Lock): ReadonlyArray<string> | undefined {
    const added: Array<string> = []
    for (const h of held) {
      if (h.name === lock.name || this.edges.get(h.name)?.has(lock.name) === true) continue
      const back = this.path(lock.name, h.name)
      if (back !== undefined) return [h.name, ...back]
      added.push(h.name)
    }
    for (const from of added) {
      let tos = this.edges.get(from)
      if (tos === undefined) this.edges.set(from, (tos = new Set()))
      tos.add(lock.name)
    }
    return undefined
  }

  // Depth-first search for a path from → … → to over recorded edges.
  private path(from: string, to: string): ReadonlyArray<string> | undefined {
    const seen = new Set<string>()
    const walk = (node: string): Array<string> | undefined => {
      if (node === to) return [node]
      if (seen.has(node)) return undefined
      seen.add(node)
      for (const next of this.edges.get(node) ?? []) {
        const rest = walk(next)
        if (rest !== undefined) return [node, ...rest]
      }
      return undefined
    }
    return walk(from)
  }
}

const describeViolation = (v: Omit<LockViolation, 'message'>): string => {
  switch (v.rule) {
    case 'shared-in-prepareSleep':
      return `${v.subsystem} took ${v.lock} in prepareSleep, already held by ${v.holder ?? '?'} in the same transaction`
    case 'sleep-in-spin':
      return `sleeping function called from invalid context: ${v.subsystem} took sleeping lock ${v.lock} in ${v.phase}`
    case 'spin-contended':
      return `${v.subsystem} took spin lock ${v.lock} in ${v.phase} while it is held: deadlock`
    case 'order-cycle':
      return `${v.subsystem} took ${v.lock} in ${v.phase}: lock order cycle ${(v.cycle ?? []).join(' → ')}`
  }
}
