import { join } from 'node:path'
import { expect, it } from 'vitest'
import { undocumentedExports } from './support/exportDocs.ts'

for (const pkg of ['core', 'subsystems', 'workqueue', 'kernel', 'cli']) {
  it(`every export of packages/${pkg} has a doc comment`, () => {
    expect(undocumentedExports(join(import.meta.dirname, '..', 'packages', pkg, 'src'))).toEqual([])
  })
}
