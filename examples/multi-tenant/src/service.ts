/**
 * A multi-tenant service built on cgtx as a library: each tenant is a
 * cgroup v2 group with memory, pids and cpu limits; processes are admitted
 * into a tenant and moved between tenants atomically (all threads or none);
 * work done on a tenant's behalf runs on a cgroup-aware workqueue, so what it
 * allocates, forks and burns is charged to that tenant and limited by it.
 */
import * as E from 'fp-ts/lib/Either.js'
import * as t from 'io-ts'
import { decode, VirtualCgroupFs, VirtualClock, type CgtxError, type Host, type Task } from '@cgtx/core'
import { createHost, type Builtins } from '@cgtx/subsystems'
import { createWork, flushWorkqueue, fromBuiltins, queueCgroupWork, WorkqueueSystem, type Workqueue, type WorkFunction } from '@cgtx/workqueue'

/** A tenant's limits; absent ones are unlimited (`max`) or the default weight. */
export const TenantLimits = t.partial(
  {
    memoryMax: t.refinement(t.Int, (n) => n >= 0, 'bytes'),
    pidsMax: t.refinement(t.Int, (n) => n >= 0, 'tasks'),
    cpuWeight: t.refinement(t.Int, (n) => n >= 1 && n <= 10_000, 'weight 1..10000'),
  },
  'TenantLimits',
)
/** A decoded {@link TenantLimits}. */
export type TenantLimits = t.TypeOf<typeof TenantLimits>

const TenantName = t.refinement(t.string, (s) => /^[a-z][a-z0-9-]{0,62}$/.test(s), 'TenantName')

/** What a tenant uses now. */
export interface TenantUsage {
  readonly memoryBytes: number
  readonly tasks: number
  readonly cpuMs: number
}

/** The service: one host, one cgroup per tenant, one cgroup-aware workqueue. */
export class TenantService {
  private constructor(
    readonly host: Host,
    readonly fs: VirtualCgroupFs,
    readonly builtins: Builtins,
    readonly workqueues: WorkqueueSystem,
    private readonly queue: Workqueue,
    /** Simulated time: the service runs minutes of scenario in milliseconds. */
    readonly clock: VirtualClock,
  ) {}

  /** A service on a fresh host with the built-in controllers on cgroup v2. */
  static create(): E.Either<CgtxError, TenantService> {
    const clock = new VirtualClock()
    const made = createHost({ layout: 'v2', cpus: 2, clock })
    if (E.isLeft(made)) return made
    const { host, builtins } = made.right
    const system = WorkqueueSystem.create(host, { controllers: fromBuiltins(host, builtins) })
    if (E.isLeft(system)) return system
    const queue = system.right.createWorkqueue({ name: 'tenant-work', flags: { unbound: true, cgroup: true } })
    if (E.isLeft(queue)) return queue
    return E.right(new TenantService(host, new VirtualCgroupFs(host), builtins, system.right, queue.right, clock))
  }

  /** Creates a tenant with its limits, all or nothing: a refused limit removes the group again. */
  addTenant(name: unknown, limits: unknown = {}): E.Either<CgtxError, void> {
    const decodedName = decode(TenantName, name, 'name')
    if (E.isLeft(decodedName)) return decodedName
    const decoded = decode(TenantLimits, limits, 'limits')
    if (E.isLeft(decoded)) return decoded
    const dir = `/unified/${decodedName.right}`
    const made = this.fs.mkdirSync(dir)
    if (E.isLeft(made)) return made
    const { memoryMax, pidsMax, cpuWeight } = decoded.right
    const writes: ReadonlyArray<readonly [string, number | undefined]> = [
      ['memory.max', memoryMax],
      ['pids.max', pidsMax],
      ['cpu.weight', cpuWeight],
    ]
    for (const [file, value] of writes) {
      if (value === undefined) continue
      const written = this.fs.writeSync(`${dir}/${file}`, `${value}`)
      if (E.isLeft(written)) {
        this.fs.rmdirSync(dir)
        return written
      }
    }
    return E.right(undefined)
  }

  /** Removes an empty tenant (EBUSY while it has tasks). */
  removeTenant(name: unknown): E.Either<CgtxError, void> {
    const decoded = decode(TenantName, name, 'name')
    return E.isLeft(decoded) ? decoded : this.fs.rmdirSync(`/unified/${decoded.right}`)
  }

  /** Starts a process with `threads` threads and admits it into `tenant`; nothing stays behind on failure. */
  admit(tenant: unknown, threads = 1): E.Either<CgtxError, Task> {
    const decoded = decode(TenantName, tenant, 'tenant')
    if (E.isLeft(decoded)) return decoded
    const task = this.host.spawn(decoded.right)
    for (let i = 1; i < threads; i++) {
      const thread = this.host.forkSync(task.tid, { thread: true })
      if (E.isLeft(thread)) return this.discard(task, thread.left)
    }
    const moved = this.move(task.tid, decoded.right)
    return E.isLeft(moved) ? this.discard(task, moved.left) : E.right(task)
  }

  /** Moves a whole process into `tenant`: every thread or none. */
  move(pid: unknown, tenant: unknown): E.Either<CgtxError, void> {
    const decoded = decode(TenantName, tenant, 'tenant')
    if (E.isLeft(decoded)) return decoded
    return E.map(() => undefined)(this.host.attachSync({ mode: 'process', pid, to: { hierarchy: 'unified', path: `/${decoded.right}` } }))
  }

  /** Queues `fn` to run on the tenant's behalf; it is charged to and limited by the tenant. */
  submit(tenant: unknown, fn: WorkFunction): E.Either<CgtxError, void> {
    const decoded = decode(TenantName, tenant, 'tenant')
    if (E.isLeft(decoded)) return decoded
    const work = createWork(fn)
    if (E.isLeft(work)) return work
    return E.map(() => undefined)(queueCgroupWork(this.queue, work.right, { hierarchy: 'unified', path: `/${decoded.right}` }))
  }

  /** Lets `ms` of simulated time pass and waits for every work submitted before the call. */
  async settle(ms: number): Promise<void> {
    const flushed = flushWorkqueue(this.queue)
    await this.clock.advance(ms)
    await flushed
  }

  /** What the tenant uses now. */
  usage(tenant: unknown): E.Either<CgtxError, TenantUsage> {
    const decoded = decode(TenantName, tenant, 'tenant')
    if (E.isLeft(decoded)) return decoded
    const dir = `/unified/${decoded.right}`
    const memory = this.fs.readSync(`${dir}/memory.current`)
    if (E.isLeft(memory)) return memory
    const tasks = this.fs.readSync(`${dir}/pids.current`)
    if (E.isLeft(tasks)) return tasks
    const cpu = this.workqueues.cpuStat({ hierarchy: 'unified', path: dir.slice('/unified'.length) })
    if (E.isLeft(cpu)) return cpu
    return E.right({ memoryBytes: Number(memory.right), tasks: Number(tasks.right), cpuMs: cpu.right.usageMs })
  }

  // Undoes a half-made admission: the process exits and is reaped.
  private discard(task: Task, error: CgtxError): E.Either<CgtxError, never> {
    this.host.exitSync(task.tid, { group: true })
    this.host.reap(task.tid)
    return E.left(error)
  }
}
