import { Host, type Subsystem } from '@cgtx/core'
const counting = (name: string): Subsystem<{ tasks: number }> => ({
  name,
  createState: () => ({ tasks: 0 }),
  prepareSleep(ctx) { for (const entry of ctx.tasks) ctx.to(entry).state.tasks++ },
  abortSleep(ctx) { for (const entry of ctx.tasks) ctx.to(entry).state.tasks-- },
  commit(ctx) { for (const entry of ctx.tasks) ctx.from(entry).state.tasks-- },
})
const n = Number(process.env.SUBS ?? 0)
const names = Array.from({ length: n }, (_, i) => `s${i}`)
const host = (Host.create({ subsystems: names.map(counting), hierarchies: [{ name: 'h', subsystems: names }] }) as any).right as Host
host.mkdirSync({ hierarchy: 'h', path: '/a' }); host.mkdirSync({ hierarchy: 'h', path: '/b' })
if (process.env.NOTRACE) host.trace.enabled = false
const pid = host.spawn().tid
const a = { mode: 'thread' as const, pid, to: { hierarchy: 'h', path: '/a' } }
const b = { mode: 'thread' as const, pid, to: { hierarchy: 'h', path: '/b' } }
const N = Number(process.env.N ?? 3_000_000)
for (let r = 0; r < 3; r++) {
  const t = process.hrtime.bigint()
  for (let i = 0; i < N; i++) { const x = host.attachSync(i % 2 === 0 ? a : b); if (x._tag === 'Left') throw new Error(x.left.message) }
  console.log(`${n} subs: ${Number(process.hrtime.bigint() - t) / N} ns`)
}
