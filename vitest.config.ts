import { defineConfig } from 'vitest/config'

// One vitest project per package plus the cross-package suites in test/.
const packages = ['core', 'subsystems', 'workqueue', 'kernel', 'cli']

export default defineConfig({
  test: {
    projects: [
      ...packages.map((name) => ({
        extends: true as const,
        test: { name, include: [`packages/${name}/test/**/*.test.ts`] },
      })),
      { extends: true as const, test: { name: 'examples', include: ['examples/**/test/**/*.test.ts'] } },
      { extends: true as const, test: { name: 'cross', include: ['test/**/*.test.ts'] } },
    ],
    testTimeout: 120_000,
    hookTimeout: 60_000,
  },
})
