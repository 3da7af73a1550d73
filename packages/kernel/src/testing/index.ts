export * from './sandbox.ts'
export * from './puppet.ts'
export * from './scenario.ts'
