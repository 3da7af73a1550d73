/**
 * Scenarios: one sequence of cgroupfs operations and process events, run on
 * the model (a {@link Host} laid out like this machine, behind a
 * {@link VirtualCgroupFs}) and on the real kernel (in a {@link Sandbox}),
 * answering the same questions on both so the answers can be compared.
 *
 * Paths in a scenario are relative to the sandbox: `/pids/a/pids.max` means
 * `/pids/cgtx-test-…/a/pids.max` on both sides. Tasks are named (`as`), and a
 * value may say `$name` where a PID goes; listings of `cgroup.procs`, `tasks`
 * and `cgroup.threads` answer with names, because PIDs differ between the
 * model and the kernel.
 *
 * @module testing/scenario
 */
import * as E from 'fp-ts/lib/Either.js'
import { readdirSync, readFileSync } from 'node:fs'
import { release } from 'node:os'
import * as t from 'io-ts'
import { decode, FsPath, Host, kstrtoint, strstrip, systemError, VirtualCgroupFs, type CgtxError, type Subsystem, type Task } from '@cgtx/core'
import { KernelCgroupFs } from '../cgroupfs.ts'
import type { Puppet } from './puppet.ts'
import { Sandbox, sandboxHierarchies } from './sandbox.ts'

/** A scenario path: absolute, mount first, no `.` or `..` components. */
export const ScenarioPath = t.refinement(FsPath, (path) => !path.split('/').some((part) => part === '.' || part === '..'), 'ScenarioPath')
const Name = t.refinement(t.string, (name) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(name), 'TaskName')

/** One step of a scenario. */
export const Step = t.union(
  [
    t.strict({ op: t.literal('mkdir'), path: ScenarioPath }),
    t.strict({ op: t.literal('rmdir'), path: ScenarioPath }),
    t.strict({ op: t.literal('read'), path: ScenarioPath }),
    t.strict({ op: t.literal('write'), path: ScenarioPath, value: t.string }),
    /** A new process (a puppet) in the sandbox root of every hierarchy. */
    t.strict({ op: t.literal('spawn'), as: Name }),
    /** A new thread of process `of`. */
    t.strict({ op: t.literal('thread'), of: Name, as: Name }),
    /** A child process of process `of` (a spawned one). */
    t.strict({ op: t.literal('fork'), of: Name, as: Name }),
    /** A thread ends; a spawned process exits and is reaped; a forked child exits and stays a zombie until `reap`. */
    t.strict({ op: t.literal('exit'), who: Name }),
    t.strict({ op: t.literal('reap'), who: Name }),
    /** Where a live task is in every hierarchy (from /proc on the kernel). */
    t.strict({ op: t.literal('cgroup'), who: Name }),
    /** The CPUs a live task may run on, as a list (`0-1`). */
    t.strict({ op: t.literal('affinity'), who: Name }),
    /** sched_setaffinity of a live task. */
    t.strict({ op: t.literal('setaffinity'), who: Name, cpus: t.array(t.number) }),
    /** sched_setscheduler of a live task: `fifo` / `rr` (priority 10) or `normal`. */
    t.strict({ op: t.literal('policy'), who: Name, policy: t.keyof({ fifo: null, rr: null, normal: null }) }),
    /** A per-CPU kernel thread (PF_NO_SETAFFINITY), which no write may move. */
    t.strict({ op: t.literal('kthread'), as: Name }),
  ],
  'Step',
)
/** A decoded {@link Step}. */
export type Step = t.TypeOf<typeof Step>

/** A scenario file. */
export const Scenario = t.intersection([t.type({ steps: t.array(Step) }), t.partial({ name: t.string, description: t.string })], 'Scenario')
/** A decoded {@link Scenario}. */
export type Scenario = t.TypeOf<typeof Scenario>

/** Decodes a scenario (e.g. parsed JSON). */
export const decodeScenario = (input: unknown): E.Either<CgtxError, Scenario> => decode(Scenario, input, 'scenario')

/** What one side answered to one step: a value (for reads), or an errno (`BadArgument` for a refused argument). */
export type Answer = { readonly ok: true; readonly value?: string } | { readonly ok: false; readonly error: string }

/** Runs steps on one side. */
export interface Runner {
  /** `model` or `kernel`. */
  readonly side: 'model' | 'kernel'
  run(step: Step): Promise<Answer>
  /** Undoes everything (kernel: processes killed, directories removed); returns what could not be undone. */
  close(): Promise<ReadonlyArray<string>>
}

type Kind = 'process' | 'thread' | 'child' | 'kthread'
interface Named {
  readonly kind: Kind
  readonly tid: number
  readonly parent?: string
  state: 'live' | 'zombie' | 'gone'
}

const refused = (error: CgtxError): Answer => ({ ok: false, error: error._tag === 'BadArgument' ? 'BadArgument' : error.errno })
const answer = <A>(result: E.Either<CgtxError, A>, value?: (a: A) => string): Answer =>
  E.isLeft(result) ? refused(result.left) : value === undefined ? { ok: true } : { ok: true, value: value(result.right) }
const misuse = (reason: string): Answer => ({ ok: false, error: `BadArgument: ${reason}` })

const listingFiles = new Set(['cgroup.procs', 'tasks', 'cgroup.threads'])

/** A CPU set in the kernel's list format: ascending, runs as `a-b`. */
export const formatCpuList = (cpus: Iterable<number>): string => {
  const sorted = [...new Set(cpus)].sort((a, b) => a - b)
  const runs: Array<string> = []
  for (let i = 0; i < sorted.length; ) {
    let j = i
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++
    runs.push(j === i ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`)
    i = j + 1
  }
  return runs.join(',')
}

// Shared by both sides: names ↔ pids, path translation, listing translation.
abstract class Side implements Runner {
  abstract readonly side: 'model' | 'kernel'
  protected readonly names = new Map<string, Named>()

  constructor(
    /** The sandbox directory name inside every hierarchy. */
    readonly prefix: string,
    readonly hierarchies: ReadonlyArray<string>,
  ) {}

  abstract run(step: Step): Promise<Answer>
  abstract close(): Promise<ReadonlyArray<string>>

  /** `/pids/a/x` → `/pids/<prefix>/a/x`. */
  protected inside(path: string): E.Either<string, string> {
    const [, mount, ...rest] = path.split('/')
    if (!this.hierarchies.includes(mount!)) return E.left(`${mount} is not a sandbox hierarchy (${this.hierarchies.join(', ')})`)
    return E.right(['', mount, this.prefix, ...rest].join('/'))
  }

  /**
   * Replaces `$name` by its pid on this side; a reaped name cannot be used
   * (its pid may belong to someone else). A value that means "the writer
   * itself" (`0`, `-0`, …) is refused: on the kernel it would move the test
   * runner's own process.
   */
  protected substitute(path: string, value: string): E.Either<string, string> {
    const literal = kstrtoint(strstrip(value), 0)
    if (listingFiles.has(path.slice(path.lastIndexOf('/') + 1)) && literal === 0)
      return E.left('a pid of 0 moves the writer itself; scenarios may not use it')
    let problem: string | undefined
    const replaced = value.replace(/\$([A-Za-z_][A-Za-z0-9_]*)/g, (_, name: string) => {
      const named = this.names.get(name)
      if (named === undefined || named.state === 'gone') problem ??= `$${name} is not a live or zombie task`
      return named === undefined ? '' : `${named.tid}`
    })
    return problem === undefined ? E.right(replaced) : E.left(problem)
  }

  /**
   * Pid listings as names (unknown pids as `?`). v2 lists in migration order,
   * which both sides share, so the order is kept. v1 sorts by pid, and pids
   * differ between the sides: a listing in ascending pid order is compared
   * by its names, sorted (so a pid wrap-around cannot reorder it); one that
   * is not ascending keeps its order, and the difference shows.
   */
  protected translate(path: string, text: string): string {
    const file = path.slice(path.lastIndexOf('/') + 1)
    if (!listingFiles.has(file)) return text
    const byTid = new Map([...this.names].filter(([, named]) => named.state !== 'gone').map(([name, named]) => [named.tid, `$${name}`]))
    const pids = text.split('\n').filter((line) => line !== '').map(Number)
    const names = pids.map((pid) => byTid.get(pid) ?? '?')
    const ascending = pids.every((pid, i) => i === 0 || pids[i - 1]! < pid)
    if (this.version(path.split('/')[1]!) === 'v1' && ascending) names.sort()
    return names.map((name) => `${name}\n`).join('')
  }

  /** The version of a sandbox hierarchy on this side. */
  protected abstract version(mount: string): 'v1' | 'v2'

  /** `/<prefix>/a` → `/a`; anything outside the sandbox is marked with `!`. */
  protected relative(path: string): string {
    const root = `/${this.prefix}`
    return path === root ? '/' : path.startsWith(`${root}/`) ? path.slice(root.length) : `!${path}`
  }

  protected named(name: string, kinds: ReadonlyArray<Kind>): E.Either<string, Named> {
    const named = this.names.get(name)
    if (named === undefined) return E.left(`no task named ${name}`)
    if (!kinds.includes(named.kind)) return E.left(`${name} is a ${named.kind}, not a ${kinds.join(' or ')}`)
    return E.right(named)
  }

  protected fresh(name: string): E.Either<string, void> {
    return this.names.has(name) ? E.left(`${name} is already taken`) : E.right(undefined)
  }

  // What a thread or fork step checks on either side before forking: a free
  // name for the new task and a live parent process (else the answer to give).
  protected forkParent(as: string, of: string): Named | Answer {
    const fresh = this.fresh(as)
    if (E.isLeft(fresh)) return misuse(fresh.left)
    const parent = this.named(of, ['process'])
    if (E.isLeft(parent)) return misuse(parent.left)
    return parent.right.state === 'live' ? parent.right : { ok: false, error: 'ESRCH' }
  }
}

/** The machine's layout as model hierarchies: each sandbox mount, with the subsystems of that name bound to it. */
export const modelLayout = (hierarchies: ReadonlyArray<string>, subsystems: ReadonlyArray<Subsystem<any>> = []) => ({
  subsystems,
  cpus: cpuCount(),
  mems: 1,
  hierarchies: hierarchies.map((name) => ({
    name,
    version: name === 'unified' ? ('v2' as const) : ('v1' as const),
    subsystems: name === 'unified' ? [] : subsystems.filter((subsystem) => subsystem.name === name).map((subsystem) => subsystem.name),
  })),
})

const cpuCount = (): number => {
  try {
    const online = readFileSync('/sys/devices/system/cpu/online', 'utf8').trim()
    return Math.max(...online.split(',').map((range) => Number(range.split('-').pop()))) + 1
  } catch {
    return 1
  }
}

/** The model side: a Host laid out like this machine, with the sandbox directory created in every hierarchy. */
export class ModelRunner extends Side {
  readonly side = 'model' as const
  readonly host: Host
  readonly fs: VirtualCgroupFs

  private constructor(prefix: string, hierarchies: ReadonlyArray<string>, host: Host) {
    super(prefix, hierarchies)
    this.host = host
    this.fs = new VirtualCgroupFs(host)
  }

  /** A model with `subsystems` (e.g. from @cgtx/subsystems); the cpuset sandbox gets every CPU and node, as the kernel's does. */
  static create(options: { readonly prefix: string; readonly hierarchies?: ReadonlyArray<string>; readonly subsystems?: ReadonlyArray<Subsystem<any>> }): E.Either<CgtxError, ModelRunner> {
    const hierarchies = options.hierarchies ?? sandboxHierarchies
    const host = Host.create(modelLayout(hierarchies, options.subsystems))
    if (E.isLeft(host)) return host
    const runner = new ModelRunner(options.prefix, hierarchies, host.right)
    for (const name of hierarchies) {
      const made = runner.fs.mkdirSync(`/${name}/${options.prefix}`)
      if (E.isLeft(made)) return made
    }
    if (hierarchies.includes('cpuset')) {
      for (const file of ['cpuset.cpus', 'cpuset.mems']) {
        const parent = runner.fs.readSync(`/cpuset/${file}`)
        // Without a cpuset controller in the model there is nothing to copy.
        if (E.isRight(parent)) {
          const copied = runner.fs.writeSync(`/cpuset/${options.prefix}/${file}`, parent.right)
          if (E.isLeft(copied)) return copied
        }
      }
    }
    return E.right(runner)
  }

  async run(step: Step): Promise<Answer> {
    const { host, fs } = this
    switch (step.op) {
      case 'mkdir':
      case 'rmdir':
      case 'read':
      case 'write': {
        const path = this.inside(step.path)
        if (E.isLeft(path)) return misuse(path.left)
        if (step.op === 'mkdir') return answer(await fs.mkdir(path.right)())
        if (step.op === 'rmdir') return answer(await fs.rmdir(path.right)())
        if (step.op === 'read') return answer(fs.readSync(path.right), (text) => this.translate(path.right, text))
        const value = this.substitute(path.right, step.value)
        if (E.isLeft(value)) return misuse(value.left)
        return answer(await fs.write(path.right, value.right)())
      }
      case 'spawn': {
        const fresh = this.fresh(step.as)
        if (E.isLeft(fresh)) return misuse(fresh.left)
        const task = host.spawn('puppet')
        const to = this.hierarchies.map((hierarchy) => ({ hierarchy, path: `/${this.prefix}` }))
        const moved = host.attachSync({ mode: 'process', pid: task.tid, to })
        if (E.isLeft(moved)) return refused(moved.left)
        this.names.set(step.as, { kind: 'process', tid: task.tid, state: 'live' })
        return { ok: true }
      }
      case 'thread':
      case 'fork': {
        const of = this.forkParent(step.as, step.of)
        if ('ok' in of) return of
        const child = host.forkSync(of.tid, { thread: step.op === 'thread' })
        if (E.isLeft(child)) return refused(child.left)
        this.names.set(step.as, { kind: step.op === 'thread' ? 'thread' : 'child', tid: child.right.tid, parent: step.of, state: 'live' })
        return { ok: true }
      }
      case 'exit': {
        const who = this.named(step.who, ['process', 'thread', 'child'])
        if (E.isLeft(who)) return misuse(who.left)
        if (who.right.state !== 'live') return { ok: false, error: 'ESRCH' }
        if (who.right.kind === 'thread') {
          const exited = host.exitSync(who.right.tid)
          if (E.isLeft(exited)) return refused(exited.left)
          who.right.state = 'gone'
          return { ok: true }
        }
        if (who.right.kind === 'child') {
          const exited = host.exitSync(who.right.tid, { group: true })
          if (E.isLeft(exited)) return refused(exited.left)
          who.right.state = 'zombie'
          return { ok: true }
        }
        // A puppet kills and reaps its children, then exits and is reaped by the harness.
        for (const [, named] of this.names) {
          if (named.parent !== step.who) continue
          if (named.kind === 'child' && named.state === 'live') host.exitSync(named.tid, { group: true })
          if (named.kind === 'child' && named.state !== 'gone') host.reap(named.tid)
          named.state = 'gone'
        }
        const exited = host.exitSync(who.right.tid, { group: true })
        if (E.isLeft(exited)) return refused(exited.left)
        host.reap(who.right.tid)
        who.right.state = 'gone'
        return { ok: true }
      }
      case 'reap': {
        const who = this.named(step.who, ['child'])
        if (E.isLeft(who)) return misuse(who.left)
        if (who.right.state !== 'zombie') return { ok: false, error: 'ECHILD' }
        const reaped = host.reap(who.right.tid)
        if (E.isLeft(reaped)) return refused(reaped.left)
        who.right.state = 'gone'
        return { ok: true }
      }
      case 'cgroup': {
        const who = this.named(step.who, ['process', 'thread', 'child', 'kthread'])
        if (E.isLeft(who)) return misuse(who.left)
        const task: Task | undefined = host.task(who.right.tid)
        if (task === undefined || who.right.state !== 'live') return { ok: false, error: 'ESRCH' }
        return { ok: true, value: this.hierarchies.map((name) => `${name}:${this.relative(host.cgroupOf(task, host.hierarchy(name)!).path)}`).join(' ') }
      }
      case 'affinity':
      case 'setaffinity':
      case 'policy': {
        const who = this.named(step.who, ['process', 'thread', 'child'])
        if (E.isLeft(who)) return misuse(who.left)
        const task = host.task(who.right.tid)
        if (task === undefined || who.right.state !== 'live') return { ok: false, error: 'ESRCH' }
        if (step.op === 'setaffinity') return answer(host.setAffinity(task.tid, step.cpus))
        if (step.op === 'policy') return answer(host.setPolicy(task.tid, step.policy))
        return { ok: true, value: formatCpuList(task.affinity ?? Array.from({ length: host.cpus }, (_, cpu) => cpu)) }
      }
      case 'kthread': {
        const fresh = this.fresh(step.as)
        if (E.isLeft(fresh)) return misuse(fresh.left)
        const kthread = host.createKernelThread({ comm: 'kworker', noSetAffinity: true })
        if (E.isLeft(kthread)) return refused(kthread.left)
        this.names.set(step.as, { kind: 'kthread', tid: kthread.right.tid, state: 'live' })
        return { ok: true }
      }
    }
  }

  protected version(mount: string): 'v1' | 'v2' {
    return this.host.hierarchy(mount)?.version ?? 'v1'
  }

  async close(): Promise<ReadonlyArray<string>> {
    return []
  }
}

const PF_NO_SETAFFINITY = 0x04000000
const PF_KTHREAD = 0x00200000

/** A kernel thread this machine has that may not change affinity (a per-CPU kworker), by /proc/PID/stat flags. */
export const findPerCpuKthread = (): number | undefined => {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      const flags = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[6])
      if ((flags & PF_KTHREAD) !== 0 && (flags & PF_NO_SETAFFINITY) !== 0) return Number(entry)
    } catch {
      // Gone meanwhile.
    }
  }
  return undefined
}

/** The kernel side: a sandbox on the real kernel, puppets for processes. */
export class KernelRunner extends Side {
  readonly side = 'kernel' as const
  private readonly puppets = new Map<string, Puppet>()

  private constructor(readonly sandbox: Sandbox) {
    super(sandbox.prefix, sandbox.hierarchies)
  }

  /** A runner in a new sandbox (EACCES where cgroupfs is not writable). */
  static async create(options: { readonly hierarchies?: ReadonlyArray<string> } = {}): Promise<E.Either<CgtxError, KernelRunner>> {
    const sandbox = await Sandbox.create(options)
    return E.map((created: Sandbox) => new KernelRunner(created))(sandbox)
  }

  async run(step: Step): Promise<Answer> {
    // A puppet killed from outside (cgroup.kill) is gone once Node has reaped it.
    for (const [name, puppet] of this.puppets) {
      const named = this.names.get(name)!
      if (puppet.running || named.state === 'gone') continue
      named.state = 'gone'
      for (const [, other] of this.names) if (other.parent === name && other.kind === 'thread') other.state = 'gone'
    }
    const fs = this.sandbox.fs
    switch (step.op) {
      case 'mkdir':
      case 'rmdir':
      case 'read':
      case 'write': {
        const path = this.inside(step.path)
        if (E.isLeft(path)) return misuse(path.left)
        if (step.op === 'mkdir') return answer(fs.mkdirSync(path.right))
        if (step.op === 'rmdir') return answer(fs.rmdirSync(path.right))
        if (step.op === 'read') return answer(fs.readSync(path.right), (text) => this.translate(path.right, text))
        const value = this.substitute(path.right, step.value)
        if (E.isLeft(value)) return misuse(value.left)
        const written = fs.writeSync(path.right, value.right)
        this.guardKthreads()
        return answer(written)
      }
      case 'spawn': {
        const fresh = this.fresh(step.as)
        if (E.isLeft(fresh)) return misuse(fresh.left)
        const puppet = await this.sandbox.spawn()
        if (E.isLeft(puppet)) return refused(puppet.left)
        this.puppets.set(step.as, puppet.right)
        this.names.set(step.as, { kind: 'process', tid: puppet.right.pid, state: 'live' })
        return { ok: true }
      }
      case 'thread':
      case 'fork': {
        const of = this.forkParent(step.as, step.of)
        if ('ok' in of) return of
        const reply = await this.puppets.get(step.of)!.command(step.op)
        if (!reply.ok) return { ok: false, error: reply.value }
        if (step.op === 'fork') this.sandbox.track(Number(reply.value))
        this.names.set(step.as, { kind: step.op === 'thread' ? 'thread' : 'child', tid: Number(reply.value), parent: step.of, state: 'live' })
        return { ok: true }
      }
      case 'exit': {
        const who = this.named(step.who, ['process', 'thread', 'child'])
        if (E.isLeft(who)) return misuse(who.left)
        if (who.right.state !== 'live') return { ok: false, error: 'ESRCH' }
        const named = who.right
        if (named.kind === 'process') {
          if (!(await this.puppets.get(step.who)!.exit())) return { ok: false, error: 'ETIMEDOUT' }
          for (const [, other] of this.names) if (other.parent === step.who) other.state = 'gone'
          named.state = 'gone'
          return { ok: true }
        }
        const parent = this.puppets.get(named.parent!)!
        const reply = await parent.command(named.kind === 'thread' ? `endthread ${named.tid}` : `kill ${named.tid}`)
        if (!reply.ok) return { ok: false, error: reply.value }
        named.state = named.kind === 'thread' ? 'gone' : 'zombie'
        return { ok: true }
      }
      case 'reap': {
        const who = this.named(step.who, ['child'])
        if (E.isLeft(who)) return misuse(who.left)
        if (who.right.state !== 'zombie') return { ok: false, error: 'ECHILD' }
        const reply = await this.puppets.get(who.right.parent!)!.command(`reap ${who.right.tid}`)
        if (!reply.ok) return { ok: false, error: reply.value }
        who.right.state = 'gone'
        return { ok: true }
      }
      case 'cgroup': {
        const who = this.named(step.who, ['process', 'thread', 'child', 'kthread'])
        if (E.isLeft(who)) return misuse(who.left)
        if (who.right.state !== 'live') return { ok: false, error: 'ESRCH' }
        const tgid = who.right.kind === 'thread' ? this.names.get(who.right.parent!)!.tid : who.right.tid
        const placement = fs.placement(tgid, who.right.tid)
        return answer(placement, (at) => this.hierarchies.map((name) => `${name}:${this.relative(at[name] ?? '?')}`).join(' '))
      }
      case 'affinity':
      case 'setaffinity':
      case 'policy': {
        const who = this.named(step.who, ['process', 'thread', 'child'])
        if (E.isLeft(who)) return misuse(who.left)
        if (who.right.state !== 'live') return { ok: false, error: 'ESRCH' }
        const owner = who.right.kind === 'process' ? step.who : who.right.parent!
        const tgid = this.names.get(who.right.kind === 'thread' ? owner : step.who)!.tid
        if (step.op === 'setaffinity' || step.op === 'policy') {
          const command = step.op === 'policy' ? `policy ${who.right.tid} ${step.policy}` : `affinity ${who.right.tid} ${step.cpus.join(',')}`
          const reply = await this.puppets.get(owner)!.command(command)
          return reply.ok ? { ok: true } : { ok: false, error: reply.value }
        }
        try {
          const status = readFileSync(`/proc/${tgid}/task/${who.right.tid}/status`, 'utf8')
          return { ok: true, value: /^Cpus_allowed_list:\s*(.*)$/m.exec(status)?.[1] ?? '?' }
        } catch {
          return { ok: false, error: 'ESRCH' }
        }
      }
      case 'kthread': {
        const fresh = this.fresh(step.as)
        if (E.isLeft(fresh)) return misuse(fresh.left)
        const pid = findPerCpuKthread()
        if (pid === undefined) return { ok: false, error: 'ESRCH' }
        this.names.set(step.as, { kind: 'kthread', tid: pid, state: 'live' })
        return { ok: true }
      }
    }
  }

  protected version(mount: string): 'v1' | 'v2' {
    return this.sandbox.fs.mounts.mounts.find((candidate) => candidate.name === mount)?.version ?? 'v1'
  }

  // A kernel thread must never stay moved: the kernel refuses (EINVAL), but
  // should a write ever succeed, it is put straight back and reported loudly.
  private guardKthreads(): void {
    for (const [name, named] of this.names) {
      if (named.kind !== 'kthread') continue
      const at = this.sandbox.fs.placement(named.tid)
      if (E.isLeft(at)) continue
      for (const hierarchy of this.hierarchies) {
        if (at.right[hierarchy]?.startsWith(`/${this.prefix}`) !== true) continue
        const unconfined = KernelCgroupFs.open({}, this.sandbox.fs.mounts)
        if (E.isRight(unconfined)) unconfined.right.writeSync(`/${hierarchy}/tasks`, `${named.tid}`)
        throw new Error(`SAFETY: kernel thread ${name} (${named.tid}) was moved into ${hierarchy}; moved back to the root`)
      }
    }
  }

  async close(): Promise<ReadonlyArray<string>> {
    return (await this.sandbox.cleanup()).leftovers
  }
}

/** One step's answers. */
export interface StepResult {
  readonly step: Step
  readonly model?: Answer
  readonly kernel?: Answer
  /** Both sides ran it and answered the same. */
  readonly agree?: boolean
}

/** A whole run: every step's answers and the kernel version it ran against. */
export interface ScenarioRun {
  readonly kernelRelease: string
  readonly results: ReadonlyArray<StepResult>
  /** Whatever the kernel side could not clean up. */
  readonly leftovers: ReadonlyArray<string>
}

const sameAnswer = (a: Answer, b: Answer): boolean => JSON.stringify(a) === JSON.stringify(b)

/** Where a scenario runs, and the model's subsystems. */
export interface RunOptions {
  readonly on: 'model' | 'kernel' | 'both'
  readonly subsystems?: ReadonlyArray<Subsystem<any>>
  readonly hierarchies?: ReadonlyArray<string>
}

/** Runs a scenario on the model, the kernel or both, step by step, and cleans up. */
export const runScenario = async (input: unknown, options: RunOptions): Promise<E.Either<CgtxError, ScenarioRun>> => {
  const scenario = decodeScenario(input)
  if (E.isLeft(scenario)) return scenario
  let kernel: KernelRunner | undefined
  if (options.on !== 'model') {
    const created = await KernelRunner.create(options.hierarchies === undefined ? {} : { hierarchies: options.hierarchies })
    if (E.isLeft(created)) return created
    kernel = created.right
  }
  const model = options.on === 'kernel' ? undefined : ModelRunner.create({ prefix: kernel?.prefix ?? 'cgtx-test-model', hierarchies: kernel?.hierarchies ?? options.hierarchies ?? sandboxHierarchies, ...(options.subsystems === undefined ? {} : { subsystems: options.subsystems }) })
  if (model !== undefined && E.isLeft(model)) {
    await kernel?.close()
    return model
  }
  const results: Array<StepResult> = []
  let leftovers: ReadonlyArray<string> = []
  try {
    for (const step of scenario.right.steps) {
      const modelAnswer = model === undefined ? undefined : await model.right.run(step)
      const kernelAnswer = kernel === undefined ? undefined : await kernel.run(step)
      results.push({
        step,
        ...(modelAnswer === undefined ? {} : { model: modelAnswer }),
        ...(kernelAnswer === undefined ? {} : { kernel: kernelAnswer }),
        ...(modelAnswer === undefined || kernelAnswer === undefined ? {} : { agree: sameAnswer(modelAnswer, kernelAnswer) }),
      })
    }
  } catch (error) {
    // Only the kernel-thread safety guard throws; the run stops there.
    return E.left(systemError('EPERM', 'run scenario', { reason: String(error) }))
  } finally {
    leftovers = kernel === undefined ? [] : await kernel.close()
  }
  return E.right({ kernelRelease: release(), results, leftovers })
}
