/**
 * Discovery of the cgroup filesystems this process can see: every cgroup v1
 * mount with the controllers bound to it, the cgroup2 (unified) mount, and
 * whether the machine runs legacy (v1 only), unified (v2 only) or hybrid.
 * Read from `/proc/self/mountinfo` and `/proc/cgroups`; each parsed row is
 * decoded by an io-ts codec so a malformed line is a typed error, not a crash.
 *
 * A mount is named by the basename of its directory (`pids`, `cpuset`,
 * `unified`, …), which is the first component of every path the backend
 * takes, exactly as in the model: `/pids/a/pids.max`.
 *
 * @module discovery
 */
import * as E from 'fp-ts/lib/Either.js'
import { readFileSync } from 'node:fs'
import { basename } from 'node:path'
import * as t from 'io-ts'
import { badArgument, decode, systemError, type CgtxError } from '@cgtx/core'

/** One line of `/proc/self/mountinfo` (proc(5)), with octal escapes undone. */
export const MountinfoRow = t.type(
  {
    mountId: t.Int,
    parentId: t.Int,
    device: t.string,
    root: t.string,
    mountPoint: t.string,
    mountOptions: t.array(t.string),
    fsType: t.string,
    source: t.string,
    superOptions: t.array(t.string),
  },
  'MountinfoRow',
)
/** A decoded {@link MountinfoRow}. */
export type MountinfoRow = t.TypeOf<typeof MountinfoRow>

/** One line of `/proc/cgroups`: a controller compiled into the kernel. */
export const ProcCgroupsRow = t.type(
  {
    subsystem: t.string,
    /** Hierarchy id of its v1 mount; 0 when not bound to a v1 mount (free for cgroup2). */
    hierarchy: t.Int,
    cgroups: t.Int,
    enabled: t.boolean,
  },
  'ProcCgroupsRow',
)
/** A decoded {@link ProcCgroupsRow}. */
export type ProcCgroupsRow = t.TypeOf<typeof ProcCgroupsRow>

/** One mounted cgroup hierarchy. */
export interface CgroupMount {
  /** Basename of the mount point: the first component of backend paths. */
  readonly name: string
  /** Where it is mounted, e.g. `/sys/fs/cgroup/pids`. */
  readonly mountPoint: string
  /** The cgroup inside the hierarchy that the mount shows (`/` unless bind-mounted). */
  readonly root: string
  readonly version: 'v1' | 'v2'
  /**
   * v1: the controllers bound to it (and `name=…` for a named hierarchy).
   * v2: the controllers its root offers in `cgroup.controllers`, when readable.
   */
  readonly controllers: ReadonlyArray<string>
  /** False for a read-only mount. */
  readonly writable: boolean
}

/** Legacy = only v1 mounts, unified = only cgroup2, hybrid = both. */
export type CgroupMode = 'legacy' | 'unified' | 'hybrid'

/** Every cgroup mount and the controllers the kernel knows. */
export interface CgroupMounts {
  readonly mode: CgroupMode
  readonly mounts: ReadonlyArray<CgroupMount>
  /** `/proc/cgroups`, as decoded. */
  readonly controllers: ReadonlyArray<ProcCgroupsRow>
}

// proc(5): space, tab, newline and backslash are written as \040 \011 \012 \134.
const unescape = (field: string): string => field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)))

const toInt = (text: string | undefined): number => (text !== undefined && /^-?\d+$/.test(text) ? Number(text) : Number.NaN)

/** Parses `/proc/self/mountinfo`; a malformed line is a {@link BadArgument} naming it. */
export const parseMountinfo = (text: string): E.Either<CgtxError, ReadonlyArray<MountinfoRow>> => {
  const rows: Array<MountinfoRow> = []
  for (const [index, line] of text.split('\n').entries()) {
    if (line.trim() === '') continue
    const fields = line.split(' ')
    // Optional fields end at a lone '-'; fs type, source and super options follow it.
    const separator = fields.indexOf('-', 6)
    const row = {
      mountId: toInt(fields[0]),
      parentId: toInt(fields[1]),
      device: fields[2],
      root: fields[3] === undefined ? undefined : unescape(fields[3]),
      mountPoint: fields[4] === undefined ? undefined : unescape(fields[4]),
      mountOptions: fields[5]?.split(','),
      fsType: separator < 0 ? undefined : fields[separator + 1],
      source: separator < 0 ? undefined : fields[separator + 2] === undefined ? undefined : unescape(fields[separator + 2]!),
      superOptions: separator < 0 ? undefined : fields[separator + 3]?.split(','),
    }
    const decoded = decode(MountinfoRow, row, `mountinfo.line${index + 1}`)
    if (E.isLeft(decoded)) return decoded
    rows.push(decoded.right)
  }
  return E.right(rows)
}

/** Parses `/proc/cgroups` (a header line, then one tab-separated line per controller). */
export const parseProcCgroups = (text: string): E.Either<CgtxError, ReadonlyArray<ProcCgroupsRow>> => {
  const rows: Array<ProcCgroupsRow> = []
  for (const [index, line] of text.split('\n').entries()) {
    if (line.trim() === '' || line.startsWith('#')) continue
    const [subsystem, hierarchy, cgroups, enabled] = line.split(/\s+/)
    const row = { subsystem, hierarchy: toInt(hierarchy), cgroups: toInt(cgroups), enabled: enabled === '1' ? true : enabled === '0' ? false : enabled }
    const decoded = decode(ProcCgroupsRow, row, `cgroups.line${index + 1}`)
    if (E.isLeft(decoded)) return decoded
    rows.push(decoded.right)
  }
  return E.right(rows)
}

/**
 * The cgroup mounts in parsed mountinfo. v1 controllers are the super
 * options that name a controller in `/proc/cgroups` (plus `name=…`); the v2
 * mount's controllers come from `readControllers(mountPoint)`.
 */
export const mountsFrom = (
  mountinfo: ReadonlyArray<MountinfoRow>,
  controllers: ReadonlyArray<ProcCgroupsRow>,
  readControllers: (mountPoint: string) => ReadonlyArray<string> = () => [],
): E.Either<CgtxError, CgroupMounts> => {
  const known = new Set(controllers.map((row) => row.subsystem))
  const mounts: Array<CgroupMount> = []
  for (const row of mountinfo) {
    if (row.fsType !== 'cgroup' && row.fsType !== 'cgroup2') continue
    const version = row.fsType === 'cgroup' ? 'v1' : 'v2'
    const name = basename(row.mountPoint)
    // The same hierarchy may be mounted twice; the first mount under a name wins.
    if (mounts.some((mount) => mount.name === name)) continue
    mounts.push({
      name,
      mountPoint: row.mountPoint,
      root: row.root,
      version,
      controllers:
        version === 'v1'
          ? row.superOptions.filter((option) => known.has(option) || option.startsWith('name='))
          : readControllers(row.mountPoint),
      writable: row.mountOptions.includes('rw'),
    })
  }
  const v1 = mounts.some((mount) => mount.version === 'v1')
  const v2 = mounts.some((mount) => mount.version === 'v2')
  if (!v1 && !v2) return E.left(systemError('ENOENT', 'discover cgroup mounts', { reason: 'no cgroup or cgroup2 mount in mountinfo' }))
  return E.right({ mode: v1 && v2 ? 'hybrid' : v1 ? 'legacy' : 'unified', mounts, controllers })
}

/** Where discovery reads from; tests pass their own texts. */
export interface DiscoverySources {
  readonly mountinfo?: string
  readonly procCgroups?: string
  readonly readControllers?: (mountPoint: string) => ReadonlyArray<string>
}

const readText = (path: string): E.Either<CgtxError, string> => {
  try {
    return E.right(readFileSync(path, 'utf8'))
  } catch (error) {
    return E.left(systemError('ENOENT', `read ${path}`, { reason: String(error) }))
  }
}

const readV2Controllers = (mountPoint: string): ReadonlyArray<string> => {
  try {
    return readFileSync(`${mountPoint}/cgroup.controllers`, 'utf8').split(/\s+/).filter((name) => name !== '')
  } catch {
    return []
  }
}

/** Discovers this machine's cgroup mounts (or those described by `sources`). */
export const discover = (sources: DiscoverySources = {}): E.Either<CgtxError, CgroupMounts> => {
  const mountinfo = sources.mountinfo === undefined ? readText('/proc/self/mountinfo') : E.right(sources.mountinfo)
  if (E.isLeft(mountinfo)) return mountinfo
  const procCgroups = sources.procCgroups === undefined ? readText('/proc/cgroups') : E.right(sources.procCgroups)
  if (E.isLeft(procCgroups)) return procCgroups
  const rows = parseMountinfo(mountinfo.right)
  if (E.isLeft(rows)) return rows
  const controllers = parseProcCgroups(procCgroups.right)
  if (E.isLeft(controllers)) return controllers
  return mountsFrom(rows.right, controllers.right, sources.readControllers ?? readV2Controllers)
}

/** The mount named `name`, or a {@link BadArgument} listing the mounted names. */
export const mountNamed = (mounts: CgroupMounts, name: string, field = 'hierarchy'): E.Either<CgtxError, CgroupMount> => {
  const mount = mounts.mounts.find((candidate) => candidate.name === name)
  return mount === undefined
    ? E.left(badArgument(field, name, `a mounted hierarchy (${mounts.mounts.map((m) => m.name).join(', ')})`))
    : E.right(mount)
}
