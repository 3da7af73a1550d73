import { builtinKitConfigs, describeConformance } from '../src/testing/index.ts'

// The built-in controllers pass the kit (composition is for third-party
// controllers: the built-ins are already in the composed world).
for (const config of Object.values(builtinKitConfigs)) describeConformance(config as never, { numRuns: 40 })
