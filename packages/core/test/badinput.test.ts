/**
 * Bad input: every public entry point given a wrong input returns a
 * BadArgument naming the field and the value (or the kernel's errno where the
 * kernel defines one), never throws, and leaves the host exactly as it was.
 */
import * as E from 'fp-ts/lib/Either.js'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { Host, VirtualCgroupFs, fromKernelCallbacks, fromSinglePhase, kstrtoint, kstrtoll, strstrip, type CgtxError } from '@cgtx/core'
import { makeHost, observe, recorder, right } from './fixtures.ts'

interface Expected {
  readonly field: string
  readonly value?: unknown
}

// A host with some structure and tasks to leave untouched.
const populated = () => {
  const { host } = makeHost([])
  right(host.mkdirSync({ hierarchy: 'h', path: '/a' }))
  right(host.mkdirSync({ hierarchy: 'g', path: '/b' }))
  const task = host.spawn()
  right(host.forkSync(task.tid, { thread: true }))
  right(host.attachSync({ mode: 'process', pid: task.tid, to: { hierarchy: 'h', path: '/a' } }))
  return { host, fs: new VirtualCgroupFs(host), pid: task.tid }
}

// Runs `call` (sync or async); it must return a Left BadArgument naming `field`
// (and `value`, when given) and change nothing.
const expectBad = async (
  label: string,
  host: Host,
  call: () => E.Either<CgtxError, unknown> | Promise<E.Either<CgtxError, unknown>>,
  expected: Expected,
): Promise<void> => {
  const before = observe(host)
  let result: E.Either<CgtxError, unknown>
  try {
    result = await call()
  } catch (error) {
    throw new Error(`${label} threw: ${String(error)}`)
  }
  expect(E.isLeft(result), `${label} should fail`).toBe(true)
  const error = (result as E.Left<CgtxError>).left
  expect(error, label).toMatchObject({ _tag: 'BadArgument', field: expected.field })
  if ('value' in expected) expect((error as { value: unknown }).value, `${label} value`).toEqual(expected.value)
  // The message names the field (at least the argument and its first key).
  expect(error.message, label).toContain(expected.field.split('.').slice(0, 2).join('.'))
  expect(observe(host), `${label} changed nothing`).toEqual(before)
}

const badPids: ReadonlyArray<unknown> = [-1, 0, 1.5, '3', Number.NaN, 4_194_305, null, undefined, {}, [3], 2n]
const badRefs: ReadonlyArray<readonly [unknown, string]> = [
  [null, 'cgroup'],
  ['/a', 'cgroup'],
  [{ hierarchy: 'h' }, 'cgroup.path'],
  [{ path: '/a' }, 'cgroup.hierarchy'],
  [{ hierarchy: 'h', path: 'a' }, 'cgroup.path'],
  [{ hierarchy: 'h', path: '/a/' }, 'cgroup.path'],
  [{ hierarchy: 'h', path: '/a//b' }, 'cgroup.path'],
  [{ hierarchy: 'h', path: '/..' }, 'cgroup.path'],
  [{ hierarchy: 'h', path: 42 }, 'cgroup.path'],
  [{ hierarchy: 'nope', path: '/a' }, 'cgroup.hierarchy'],
  [{ hierarchy: '../h', path: '/a' }, 'cgroup.hierarchy'],
]

describe('Host.create', () => {
  const a = recorder('a', [])
  const b = recorder('b', [])
  const cases: ReadonlyArray<readonly [string, unknown, Expected]> = [
    ['not an object', 42, { field: 'config', value: 42 }],
    ['no hierarchies', {}, { field: 'config.hierarchies' }],
    ['hierarchies not a list', { hierarchies: 'h' }, { field: 'config.hierarchies', value: 'h' }],
    ['hierarchy without name', { hierarchies: [{}] }, { field: 'config.hierarchies.0.name' }],
    ['bad version', { hierarchies: [{ name: 'h', version: 'v3' }] }, { field: 'config.hierarchies.0.version', value: 'v3' }],
    ['duplicate subsystem names', { subsystems: [a, { ...b, name: 'a' }], hierarchies: [] }, { field: 'config.subsystems.1.name', value: 'a' }],
    [
      'subsystem bound twice',
      { subsystems: [a, b], hierarchies: [{ name: 'h', subsystems: ['a'] }, { name: 'g', subsystems: ['b', 'a'] }] },
      { field: 'config.hierarchies.1.subsystems.1', value: 'a' },
    ],
    ['unknown subsystem', { subsystems: [a], hierarchies: [{ name: 'h', subsystems: ['zz'] }] }, { field: 'config.hierarchies.0.subsystems.0', value: 'zz' }],
    ['two v2 hierarchies', { hierarchies: [{ name: 'u', version: 'v2' }, { name: 'w', version: 'v2' }] }, { field: 'config.hierarchies.1.version', value: 'v2' }],
    ['duplicate mount names', { hierarchies: [{ name: 'h' }, { name: 'h' }] }, { field: 'config.hierarchies.1.name', value: 'h' }],
    ['bad mount name', { hierarchies: [{ name: 'a/b' }] }, { field: 'config.hierarchies.0.name', value: 'a/b' }],
    ['subsystem without createState', { subsystems: [{ name: 'x' }], hierarchies: [] }, { field: 'config.subsystems.0.createState' }],
    ['subsystem name not a string', { subsystems: [{ ...a, name: 7 }], hierarchies: [] }, { field: 'config.subsystems.0.name', value: 7 }],
    ['bad abortOrder', { hierarchies: [], abortOrder: 'random' }, { field: 'config.abortOrder', value: 'random' }],
    ['tiny trace', { hierarchies: [], traceCapacity: 3 }, { field: 'config.traceCapacity', value: 3 }],
    ['zero cpus', { hierarchies: [], cpus: 0 }, { field: 'config.cpus', value: 0 }],
    ['fractional mems', { hierarchies: [], mems: 1.5 }, { field: 'config.mems', value: 1.5 }],
    ['clock without sleep', { hierarchies: [], clock: { now: () => 0, setTimer: () => ({}) } }, { field: 'config.clock.sleep' }],
    [
      'adapter over a nameless controller',
      { subsystems: [fromKernelCallbacks({ createState: () => null } as never)], hierarchies: [] },
      { field: 'config.subsystems.0.name' },
    ],
    [
      'single-phase adapter with a numeric name',
      { subsystems: [fromSinglePhase({ name: 1, createState: () => null } as never)], hierarchies: [] },
      { field: 'config.subsystems.0.name', value: 1 },
    ],
  ]
  for (const [label, config, expected] of cases) {
    it(`refuses ${label}`, () => {
      let result: E.Either<CgtxError, Host>
      try {
        result = Host.create(config)
      } catch (error) {
        throw new Error(`threw: ${String(error)}`)
      }
      expect(E.isLeft(result)).toBe(true)
      const error = (result as E.Left<CgtxError>).left
      expect(error).toMatchObject({ _tag: 'BadArgument', field: expected.field })
      if ('value' in expected) expect((error as { value: unknown }).value).toEqual(expected.value)
    })
  }
})

describe('Host operations', () => {
  it('structure and lookups refuse bad cgroup references', async () => {
    const { host } = populated()
    for (const [ref, field] of badRefs) {
      const label = JSON.stringify(ref) ?? String(ref)
      await expectBad(`cgroup ${label}`, host, () => host.cgroup(ref), { field })
      await expectBad(`mkdirSync ${label}`, host, () => host.mkdirSync(ref), { field })
      await expectBad(`rmdirSync ${label}`, host, () => host.rmdirSync(ref), { field })
      await expectBad(`mkdir ${label}`, host, () => host.mkdir(ref)(), { field })
      await expectBad(`rmdir ${label}`, host, () => host.rmdir(ref)(), { field })
    }
  })

  it('task operations refuse bad pids and options', async () => {
    const { host, pid } = populated()
    for (const bad of badPids) {
      const label = String(bad)
      const value = bad
      await expectBad(`forkSync ${label}`, host, () => host.forkSync(bad), { field: 'pid', value })
      await expectBad(`fork ${label}`, host, () => host.fork(bad)(), { field: 'pid', value })
      await expectBad(`beginExitSync ${label}`, host, () => host.beginExitSync(bad), { field: 'pid', value })
      await expectBad(`exitSync ${label}`, host, () => host.exitSync(bad), { field: 'pid', value })
      await expectBad(`exit ${label}`, host, () => host.exit(bad)(), { field: 'pid', value })
      await expectBad(`reap ${label}`, host, () => host.reap(bad), { field: 'pid', value })
      await expectBad(`execSync ${label}`, host, () => host.execSync(bad), { field: 'pid', value })
      await expectBad(`exec ${label}`, host, () => host.exec(bad)(), { field: 'pid', value })
      await expectBad(`setAffinity ${label}`, host, () => host.setAffinity(bad, [0]), { field: 'pid', value })
      await expectBad(`setPolicy ${label}`, host, () => host.setPolicy(bad, 'fifo'), { field: 'pid', value })
    }
    await expectBad('fork options', host, () => host.forkSync(pid, { thread: 'yes' }), { field: 'options.thread', value: 'yes' })
    await expectBad('fork options not an object', host, () => host.forkSync(pid, 'thread'), { field: 'options', value: 'thread' })
    await expectBad('fork comm', host, () => host.fork(pid, { comm: 5 })(), { field: 'options.comm', value: 5 })
    await expectBad('exit options', host, () => host.exitSync(pid, { group: 1 }), { field: 'options.group', value: 1 })
    await expectBad('beginExit options', host, () => host.beginExitSync(pid, { group: 'all' }), { field: 'options.group', value: 'all' })
    await expectBad('kthread options', host, () => host.createKernelThread({ noSetAffinity: 'x' }), { field: 'options.noSetAffinity', value: 'x' })
    await expectBad('affinity not a list', host, () => host.setAffinity(pid, 3), { field: 'cpus', value: 3 })
    await expectBad('negative cpu', host, () => host.setAffinity(pid, [0, -1]), { field: 'cpus.1', value: -1 })
    await expectBad('fractional cpu', host, () => host.setAffinity(pid, [0.5]), { field: 'cpus.0', value: 0.5 })
    await expectBad('policy', host, () => host.setPolicy(pid, 'deadline'), { field: 'policy', value: 'deadline' })
  })

  it('attach refuses malformed requests', async () => {
    const { host, pid } = populated()
    const to = { hierarchy: 'h', path: '/' }
    const cases: ReadonlyArray<readonly [string, unknown, Expected]> = [
      ['null', null, { field: 'request' }],
      ['a string', 'move it', { field: 'request', value: 'move it' }],
      ['bad mode', { mode: 'sideways', pid, to }, { field: 'request.mode', value: 'sideways' }],
      ['negative pid', { mode: 'process', pid: -4, to }, { field: 'request.pid', value: -4 }],
      ['string pid', { mode: 'thread', pid: `${pid}`, to }, { field: 'request.pid', value: `${pid}` }],
      ['no destination', { mode: 'process', pid }, { field: 'request.to' }],
      ['empty destination list', { mode: 'process', pid, to: [] }, { field: 'request.to' }],
      ['destination path', { mode: 'process', pid, to: { hierarchy: 'h', path: 'a' } }, { field: 'request.to.path', value: 'a' }],
      ['unknown hierarchy', { mode: 'process', pid, to: { hierarchy: 'nope', path: '/' } }, { field: 'request.to.hierarchy', value: 'nope' }],
      [
        'unknown hierarchy in a list',
        { mode: 'process', pid, to: [to, { hierarchy: 'nope', path: '/' }] },
        { field: 'request.to.1.hierarchy', value: 'nope' },
      ],
      ['one hierarchy twice', { mode: 'process', pid, to: [to, { hierarchy: 'h', path: '/a' }] }, { field: 'request.to.1.hierarchy', value: 'h' }],
      ['all without from', { mode: 'all', to }, { field: 'request.from' }],
      ['all with a relative from', { mode: 'all', from: 'a', to }, { field: 'request.from', value: 'a' }],
    ]
    for (const [label, request, expected] of cases) {
      await expectBad(`attachSync ${label}`, host, () => host.attachSync(request), expected)
      await expectBad(`attach ${label}`, host, () => host.attach(request)(), expected)
    }
  })

  it('never throws, and changes nothing when it refuses, for arbitrary junk given to any entry point', async () => {
    type Entry = readonly [name: string, call: (host: Host, fs: VirtualCgroupFs, junk: unknown) => unknown]
    const entryPoints: ReadonlyArray<Entry> = [
      ['attachSync', (host, _fs, junk) => host.attachSync(junk)],
      ['mkdirSync', (host, _fs, junk) => host.mkdirSync(junk)],
      ['rmdirSync', (host, _fs, junk) => host.rmdirSync(junk)],
      ['cgroup', (host, _fs, junk) => host.cgroup(junk)],
      ['forkSync', (host, _fs, junk) => host.forkSync(junk, junk)],
      ['exitSync', (host, _fs, junk) => host.exitSync(junk, junk)],
      ['beginExitSync', (host, _fs, junk) => host.beginExitSync(junk, junk)],
      ['reap', (host, _fs, junk) => host.reap(junk)],
      ['execSync', (host, _fs, junk) => host.execSync(junk)],
      ['setAffinity', (host, _fs, junk) => host.setAffinity(junk, junk)],
      ['setPolicy', (host, _fs, junk) => host.setPolicy(junk, junk)],
      ['createKernelThread', (host, _fs, junk) => host.createKernelThread(junk)],
      ['fs.readSync', (_host, fs, junk) => fs.readSync(junk as string)],
      ['fs.writeSync', (_host, fs, junk) => fs.writeSync(junk as string, junk as string)],
      ['fs.writeSync value', (_host, fs, junk) => fs.writeSync('/h/a/cgroup.procs', junk as string)],
      ['fs.mkdirSync', (_host, fs, junk) => fs.mkdirSync(junk as string)],
      ['fs.rmdirSync', (_host, fs, junk) => fs.rmdirSync(junk as string)],
      ['fs.listSync', (_host, fs, junk) => fs.listSync(junk as string)],
      ['Host.create', (_host, _fs, junk) => Host.create(junk)],
    ]
    // Junk that can never name a live pid, a real file or a real cgroup.
    const junkArb = fc.oneof(
      fc.constantFrom(null, undefined, Number.NaN, -1, 0, 1.5, Number.POSITIVE_INFINITY, '', '/', '//', [], {}, true, () => 1),
      // Strings that do not parse as a pid, so no write can name a live task.
      fc.string().filter((text) => typeof kstrtoint(strstrip(text), 0) !== 'number'),
      fc.integer({ max: 0 }),
      fc.object({ maxDepth: 2 }),
      fc.array(fc.anything({ maxDepth: 1 }), { maxLength: 3 }),
    )
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...entryPoints), junkArb, async ([name, call], junk) => {
        const { host, fs } = populated()
        const before = observe(host)
        const result = call(host, fs, junk) as E.Either<unknown, unknown>
        if (E.isLeft(result)) expect(observe(host)).toEqual(before)
        // Only inputs that are valid may succeed: options objects with no
        // recognised field set, a configuration, a zero-length write.
        else expect(['createKernelThread', 'Host.create'].includes(name) || junk === '', name).toBe(true)
      }),
      { numRuns: 300 },
    )
  })
})

describe('VirtualCgroupFs', () => {
  it('refuses bad paths and values with BadArgument, changing nothing', async () => {
    const { host, fs } = populated()
    const badPaths: ReadonlyArray<readonly [unknown, string]> = [
      [42, 'path'],
      ['', 'path'],
      ['h/a', 'path'],
      ['/h//a', 'path'],
      ['/h/a/', 'path'],
      ['/nope/a', 'path'],
      [null, 'path'],
    ]
    for (const [path, field] of badPaths) {
      const p = path as string
      const label = JSON.stringify(path)
      await expectBad(`readSync ${label}`, host, () => fs.readSync(p), { field, value: path })
      await expectBad(`read ${label}`, host, () => fs.read(p)(), { field, value: path })
      await expectBad(`writeSync ${label}`, host, () => fs.writeSync(p, '1'), { field, value: path })
      await expectBad(`write ${label}`, host, () => fs.write(p, '1')(), { field, value: path })
      await expectBad(`mkdirSync ${label}`, host, () => fs.mkdirSync(p), { field, value: path })
      await expectBad(`mkdir ${label}`, host, () => fs.mkdir(p)(), { field, value: path })
      await expectBad(`rmdirSync ${label}`, host, () => fs.rmdirSync(p), { field, value: path })
      await expectBad(`rmdir ${label}`, host, () => fs.rmdir(p)(), { field, value: path })
      await expectBad(`listSync ${label}`, host, () => fs.listSync(p), { field, value: path })
      await expectBad(`list ${label}`, host, () => fs.list(p)(), { field, value: path })
    }
    for (const value of [5, null, undefined, { pid: 3 }]) {
      await expectBad(`write value ${String(value)}`, host, () => fs.writeSync('/h/a/cgroup.procs', value as never), { field: 'value', value })
      await expectBad(`async write value ${String(value)}`, host, () => fs.write('/h/a/cgroup.procs', value as never)(), { field: 'value', value })
    }
  })
})

describe('kernel integer parsing', () => {
  it('answers EINVAL for non-strings instead of throwing', () => {
    for (const junk of [5, null, undefined, {}]) {
      expect(kstrtoint(junk as never)).toBe('EINVAL')
      expect(kstrtoll(junk as never)).toBe('EINVAL')
    }
  })
})
