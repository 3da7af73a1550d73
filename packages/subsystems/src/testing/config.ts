/**
 * What a controller author hands the conformance kit: a factory, the
 * arbitraries that configure and exercise the controller, an equivalence on
 * its per-cgroup state, and a capability manifest that switches suites on
 * and off.
 *
 * @module testing/config
 */
import type * as fc from 'fast-check'
import type { Cgroup, Host, Subsystem, Task } from '@cgtx/core'

/** A control-file write: file name (e.g. `io_tokens.max`) and the raw value. */
export interface ConfigWrite {
  readonly file: string
  readonly value: string
}

/**
 * Something a task does with the controller's resource (charge memory,
 * take tokens, …), run on both the real and the twin host with that host's
 * controller instance. Must be deterministic.
 */
export interface KitAction<S = unknown> {
  /** Shown in failure reports. */
  readonly name: string
  run(subsystem: Subsystem<S>, task: Task, host: Host): unknown
}

/** What the accounting suite needs to know about a counted resource. */
export interface AccountingCapability<S> {
  /** The counter of a css (its hierarchical usage). */
  readonly usage: (state: S) => number
  /**
   * What the counter of a non-root cgroup must be, computed from the host
   * (for pids: the tasks and zombies in its subtree). Optional.
   */
  readonly expected?: (cgroup: Cgroup, host: Host, subsystem: Subsystem<S>) => number
  /** Everything is returned once every task has exited and been reaped. */
  readonly releasedOnReap?: boolean
}

/** Which suites apply; everything defaults to on where it can run. */
export interface Capabilities<S> {
  /** Hierarchy versions to run on (default both). */
  readonly versions?: ReadonlyArray<'v1' | 'v2'>
  /** Protocol laws (default on). */
  readonly protocol?: boolean
  /** Hierarchical accounting laws (off unless described). */
  readonly accounting?: AccountingCapability<S>
  /** Codec round-trip laws (default on when the controller has writable files). */
  readonly codecs?: boolean
  /** fc.scheduler interleavings (default on). */
  readonly interleavings?: boolean
  /** Fault injection at every callback (default on). */
  readonly faults?: boolean
  /** Composition with the built-in controllers (default on). */
  readonly composition?: boolean
}

/** The author's side of the kit. */
export interface KitConfig<S> {
  /** Shown in reports (default: the controller's name). */
  readonly name?: string
  /** A fresh controller; called once per host the kit builds. */
  readonly factory: () => Subsystem<S>
  readonly arbitraries: {
    /** Control-file writes that configure the controller (valid and invalid). */
    readonly writes?: fc.Arbitrary<ConfigWrite>
    /** What tasks do with the resource. */
    readonly actions?: fc.Arbitrary<KitAction<S>>
  }
  /** Are two states the same for every observer? (Watermarks may differ after an abort, as in the kernel.) */
  readonly equivalence: (a: S, b: S) => boolean
  readonly capabilities?: Capabilities<S>
}

/** Budget and replay knobs of a kit run. */
export interface RunOptions {
  /** Runs per law (default 60, or `CGTX_KIT_RUNS`). */
  readonly numRuns?: number
  readonly seed?: number
  /** fast-check replay path of a reported failure (use with `seed` and `only`). */
  readonly path?: string
  /** Only the laws with these names. */
  readonly only?: ReadonlyArray<string>
  /** Longest operation sequence (default 25). */
  readonly maxOperations?: number
}
