/**
 * `cgtx replay SCENARIO.json --on model|kernel|both`: runs a scenario file
 * (see @cgtx/kernel/testing's scenario language) on the model, the real
 * kernel or both, and prints every step's answers side by side; on `both`,
 * a `≠` marks each step where they differ and the exit code is 1 if any do.
 * The kernel side needs root and a writable /sys/fs/cgroup and works only
 * inside a `cgtx-test-…` sandbox it creates and removes.
 */
import * as E from 'fp-ts/lib/Either.js'
import { readFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import * as t from 'io-ts'
import { decode } from '@cgtx/core'
import { runScenario, type Answer, type Step } from '@cgtx/kernel/testing'
import { builtinSubsystems } from '@cgtx/subsystems'

const Side = t.keyof({ model: null, kernel: null, both: null }, 'Side')

/** Usage line of `cgtx replay`. */
export const replayUsage = 'cgtx replay SCENARIO.json [--on model|kernel|both]'

const show = (answer: Answer | undefined): string =>
  answer === undefined ? '' : answer.ok ? (answer.value === undefined ? 'ok' : JSON.stringify(answer.value)) : answer.error

const describeStep = (step: Step): string => {
  switch (step.op) {
    case 'write':
      return `write ${step.path} ${JSON.stringify(step.value)}`
    case 'mkdir':
    case 'rmdir':
    case 'read':
      return `${step.op} ${step.path}`
    case 'spawn':
    case 'kthread':
      return `${step.op} ${step.as}`
    case 'thread':
    case 'fork':
      return `${step.op} ${step.of} → ${step.as}`
    case 'setaffinity':
      return `setaffinity ${step.who} ${step.cpus.join(',')}`
    case 'policy':
      return `policy ${step.who} ${step.policy}`
    default:
      return `${step.op} ${step.who}`
  }
}

/** Runs `cgtx replay`; returns the exit code. */
export const runReplay = async (args: ReadonlyArray<string>, print: (line: string) => void): Promise<number> => {
  const file = args.find((arg, i) => !arg.startsWith('--') && args[i - 1] !== '--on')
  const onIndex = args.indexOf('--on')
  const side = decode(Side, onIndex < 0 ? 'both' : args[onIndex + 1], 'on')
  if (file === undefined || E.isLeft(side)) {
    print(`usage: ${replayUsage}${E.isLeft(side) ? `\n${side.left.message}` : ''}`)
    return 2
  }
  let input: unknown
  try {
    input = JSON.parse(readFileSync(file, 'utf8'))
  } catch (error) {
    print(`cgtx replay: cannot read ${file}: ${error instanceof Error ? error.message : String(error)}`)
    return 2
  }
  const builtins = builtinSubsystems({ cpus: availableParallelism(), mems: 1, rtGroupSched: true })
  if (E.isLeft(builtins)) {
    print(`cgtx replay: ${builtins.left.message}`)
    return 2
  }
  // The memory hierarchy is never touched on the kernel side.
  const subsystems = builtins.right.filter((subsystem) => subsystem.name !== 'memory')
  const ran = await runScenario(input, { on: side.right, subsystems })
  if (E.isLeft(ran)) {
    print(`cgtx replay: ${ran.left.message}`)
    return 2
  }
  const { kernelRelease, results, leftovers } = ran.right
  print(`kernel ${kernelRelease}; ${results.length} steps on ${side.right}`)
  const rows = results.map((result, i) => [
    result.agree === false ? '≠' : ' ',
    `${i + 1}`.padStart(3),
    describeStep(result.step),
    ...(side.right === 'kernel' ? [] : [show(result.model)]),
    ...(side.right === 'model' ? [] : [show(result.kernel)]),
  ])
  const header = [' ', '  #', 'step', ...(side.right === 'kernel' ? [] : ['model']), ...(side.right === 'model' ? [] : ['kernel'])]
  const widths = header.map((title, column) => Math.min(60, Math.max(title.length, ...rows.map((row) => row[column]!.length))))
  for (const row of [header, ...rows]) print(row.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd())
  const differing = results.filter((result) => result.agree === false).length
  if (side.right === 'both') print(differing === 0 ? 'model and kernel agree on every step' : `${differing} step(s) differ`)
  if (leftovers.length > 0) print(`cleanup left: ${leftovers.join('; ')}`)
  return differing === 0 && leftovers.length === 0 ? 0 : 1
}
