/**
 * The freezer (kernel/cgroup/legacy_freezer.c on v1, `cgroup.freeze` on
 * v2). A cgroup is freezing when it or an ancestor was frozen; its tasks are
 * frozen (`task.frozen`) and, since freezing is immediate in the model,
 * v1 `freezer.state` reads FROZEN right away (as Linux 6.18 does for an
 * idle task). Migration is never refused: a task moved into a freezing
 * cgroup is frozen at attach, one moved out of it is thawed; a child forked
 * in a freezing cgroup starts frozen. `cgroup.frozen` (v2 `cgroup.events`)
 * follows the freezing state.
 *
 * On v2 the freezer is a controller in the model, so `cgroup.freeze`
 * exists where the controller is enabled (the kernel has it everywhere).
 *
 * @module freezer
 */
import * as t from 'io-ts'
import { kstrtoint, strstrip, type Cgroup, type Css } from '@cgtx/core'
import { keyword } from '../codecs.ts'
import { defineSubsystem, failWith, type DefinedSubsystem } from '../defineSubsystem.ts'

/** Per-cgroup state of the freezer. */
export interface FreezerState {
  /** Frozen by a write here (`freezer.self_freezing`, v2 `cgroup.freeze`). */
  selfFreezing: boolean
  /** An ancestor is freezing (`freezer.parent_freezing`). */
  parentFreezing: boolean
}

/** The freezer type. */
export type FreezerSubsystem = DefinedSubsystem<FreezerState>

const freezing = (state: FreezerState): boolean => state.selfFreezing || state.parentFreezing

// cgroup.freeze: kstrtoint of the stripped write, 0 or 1, else ERANGE.
const FreezeCodec = new t.Type<boolean, string, string>(
  'cgroup.freeze',
  (u): u is boolean => typeof u === 'boolean',
  (input, context) => {
    const value = kstrtoint(strstrip(input), 0)
    if (typeof value === 'string') return failWith(value, input, context)
    return value === 0 || value === 1 ? t.success(value === 1) : failWith('ERANGE', input, context)
  },
  (value) => (value ? '1\n' : '0\n'),
)

/** Creates a freezer. */
export const freezer = (): FreezerSubsystem => {
  const cssIn = (cgroup: Cgroup): Css<FreezerState> | undefined => {
    for (const css of cgroup.ownCss) if (css !== undefined && css.subsystem === self) return css as Css<FreezerState>
    return undefined
  }

  // Re-derives parent_freezing below `css` and freezes or thaws every task there.
  const update = (css: Css<FreezerState>): void => {
    for (const cgroup of css.cgroup.subtree()) {
      const at = cssIn(cgroup)
      if (at === undefined) continue
      if (at !== css) at.state.parentFreezing = at.parent !== undefined && freezing(at.parent.state)
      const frozen = freezing(at.state)
      cgroup.frozen = frozen
      for (const task of cgroup.tasks()) task.frozen = frozen
    }
  }

  const setSelf = (css: Css<FreezerState>, on: boolean): void => {
    css.state.selfFreezing = on
    update(css)
  }

  const self: FreezerSubsystem = defineSubsystem<FreezerState>({
    name: 'freezer',
    state: (parent, cgroup) => {
      const parentFreezing = parent !== undefined && freezing(parent)
      cgroup.frozen = parentFreezing
      return { selfFreezing: false, parentFreezing }
    },
    files: [
      {
        name: 'freezer.state',
        versions: ['v1'],
        read: (css) => (freezing(css.state) ? 'FROZEN\n' : 'THAWED\n'),
        write: {
          codec: keyword('freezer.state', ['FROZEN', 'THAWED'] as const),
          invalid: 'EINVAL',
          apply: (css, state) => setSelf(css, state === 'FROZEN'),
        },
      },
      { name: 'freezer.self_freezing', versions: ['v1'], read: (css) => (css.state.selfFreezing ? '1\n' : '0\n') },
      { name: 'freezer.parent_freezing', versions: ['v1'], read: (css) => (css.state.parentFreezing ? '1\n' : '0\n') },
      {
        name: 'cgroup.freeze',
        versions: ['v2'],
        read: (css) => (css.state.selfFreezing ? '1\n' : '0\n'),
        write: { codec: FreezeCodec, invalid: 'EINVAL', apply: (css, on) => setSelf(css, on) },
      },
    ],
    fork: { done: (ctx) => void (ctx.child.frozen = freezing(ctx.css.state)) },
    attach: {
      attach: (_ctx, moves) => {
        for (const move of moves) move.task.frozen = freezing(move.to.state)
      },
    },
  })
  return self
}
