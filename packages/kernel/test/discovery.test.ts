import * as E from 'fp-ts/lib/Either.js'
import { describe, expect, it } from 'vitest'
import { discover, mountNamed, parseMountinfo, parseProcCgroups } from '@cgtx/kernel'

const mountinfo = [
  '31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
  '32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct',
  '39 31 0:36 / /sys/fs/cgroup/pids ro,relatime - cgroup cgroup rw,pids',
  '40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd',
  '41 31 0:38 / /sys/fs/cgroup/un\\040ified rw,relatime - cgroup2 cgroup2 rw,nsdelegate',
  '',
].join('\n')
const procCgroups = '#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpu\t1\t7\t1\ncpuacct\t1\t4\t1\npids\t8\t25\t1\nhugetlb\t0\t5\t1\n'

describe('discovery', () => {
  it('finds v1 mounts with their controllers, the v2 mount, and calls it hybrid', () => {
    const found = discover({ mountinfo, procCgroups, readControllers: () => ['hugetlb'] })
    expect(E.isRight(found)).toBe(true)
    if (E.isLeft(found)) return
    expect(found.right.mode).toBe('hybrid')
    expect(found.right.mounts.map((m) => [m.name, m.version, m.controllers.join('+'), m.writable])).toEqual([
      ['cpu,cpuacct', 'v1', 'cpu+cpuacct', true],
      ['pids', 'v1', 'pids', false],
      ['systemd', 'v1', 'name=systemd', true],
      ['un ified', 'v2', 'hugetlb', true],
    ])
  })

  it('tells legacy and unified machines apart', () => {
    const v1only = mountinfo.split('\n').filter((line) => !line.includes('cgroup2')).join('\n')
    const v2only = mountinfo.split('\n').filter((line) => !line.includes(' cgroup cgroup ')).join('\n')
    expect(E.map((m: { mode: string }) => m.mode)(discover({ mountinfo: v1only, procCgroups }))).toEqual(E.right('legacy'))
    expect(E.map((m: { mode: string }) => m.mode)(discover({ mountinfo: v2only, procCgroups, readControllers: () => [] }))).toEqual(E.right('unified'))
    expect(discover({ mountinfo: mountinfo.split('\n')[0]!, procCgroups })).toMatchObject({ _tag: 'Left', left: { errno: 'ENOENT' } })
  })

  it('rejects a malformed line with a BadArgument naming it', () => {
    expect(parseMountinfo('x 1 0:1 / /a rw - cgroup cgroup rw')).toMatchObject({ _tag: 'Left', left: { _tag: 'BadArgument', field: 'mountinfo.line1.mountId' } })
    expect(parseMountinfo('1 1 0:1 / /a rw shared:1')).toMatchObject({ _tag: 'Left', left: { _tag: 'BadArgument' } })
    expect(parseProcCgroups('pids\t8\t25\tmaybe\n')).toMatchObject({ _tag: 'Left', left: { _tag: 'BadArgument', field: 'cgroups.line1.enabled' } })
  })

  it('names a missing hierarchy with the mounted ones', () => {
    const found = discover({ mountinfo, procCgroups })
    if (E.isLeft(found)) throw new Error('discovery failed')
    expect(mountNamed(found.right, 'memory')).toMatchObject({ _tag: 'Left', left: { _tag: 'BadArgument', field: 'hierarchy' } })
  })

  it('reads this machine', () => {
    const found = discover()
    expect(E.isRight(found)).toBe(true)
    if (E.isRight(found)) expect(found.right.mounts.length).toBeGreaterThan(0)
  })
})

describe('/proc/PID/cgroup', () => {
  it('maps every line to its mount by controller set, v2 by id 0, and strips " (deleted)"', async () => {
    const { parseProcCgroup } = await import('@cgtx/kernel')
    const found = discover({ mountinfo, procCgroups, readControllers: () => [] })
    if (E.isLeft(found)) throw new Error('discovery failed')
    const text = ['9:name=systemd:/', '8:pids:/x/y', '1:cpuacct,cpu:/a b', '4:memory:/m', '0::/gone (deleted)', 'garbage', ''].join('\n')
    expect(parseProcCgroup(found.right, text)).toEqual({ systemd: '/', pids: '/x/y', 'cpu,cpuacct': '/a b', 'un ified': '/gone' })
  })

  it('reads this process and refuses a task that does not exist with ESRCH', async () => {
    const { placementOf, threadsOf, tgidOf } = await import('@cgtx/kernel')
    const found = discover()
    if (E.isLeft(found)) throw new Error('discovery failed')
    const mine = placementOf(found.right, process.pid)
    expect(E.isRight(mine) && Object.keys(mine.right).length).toBeGreaterThan(0)
    expect(placementOf(found.right, 4_194_304)).toMatchObject({ _tag: 'Left', left: { errno: 'ESRCH' } })
    expect(threadsOf(4_194_304)).toMatchObject({ _tag: 'Left', left: { errno: 'ESRCH' } })
    expect(tgidOf(process.pid)).toEqual(E.right(process.pid))
  })
})
