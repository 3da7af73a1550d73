/**
 * `@cgtx/subsystems/testing`: the conformance kit for controllers. Laws are
 * data ({@link allLaws}: name, suite, description, property); the author
 * supplies a {@link KitConfig} (a factory, arbitraries for configuration
 * writes and resource actions, an equivalence on state and a capability
 * manifest). Run them with {@link describeConformance} in vitest (one `it`
 * per law) or {@link runLaws} anywhere.
 *
 * @example
 * import { describeConformance } from '@cgtx/subsystems/testing'
 * describeConformance({ factory: () => myController(), arbitraries: { writes }, equivalence: sameState })
 *
 * @module @cgtx/subsystems/testing
 */
export type { AccountingCapability, Capabilities, ConfigWrite, KitAction, KitConfig, RunOptions } from './config.ts'
export { allLaws, lawsFor, LawViolation, type Law, type LawInput, type Suite } from './laws.ts'
export { formatResult, runLaw, runLaws, type LawResult } from './run.ts'
export { describeConformance } from './vitest.ts'
export { COMPANION, companion, faultPlans, type Companion, type FaultKind, type FaultPlan } from './companion.ts'
export { buildWorld, describeOp, describeOps, PATHS, type Op, type OpResult, type Setup, type World } from './world.ts'
export { builtinKitConfigs } from './builtins.ts'
