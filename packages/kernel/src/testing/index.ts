export * from './sandbox.ts'
export * from './puppet.ts'
