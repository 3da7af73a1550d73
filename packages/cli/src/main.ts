/**
 * The `cgtx` command line. `cgtx demo` walks through a transaction; other
 * commands are listed by `cgtx help`.
 */
import { runBench } from './bench.ts'
import { runCheck } from './check.ts'
import { runDemo } from './demo.ts'
import { runReplay } from './replay.ts'

const usage = `usage: cgtx <command>

commands:
  demo     a short scenario: a hierarchy, a process moved, a move refused and rolled back
  check    MODULE | builtin:NAME [--runs N] [--seed N --path P] [--only LAW]: the conformance kit on a controller plugin
  replay   SCENARIO.json [--on model|kernel|both]: a scenario on the model and/or the real kernel, answers side by side
  bench    [NAME]: a benchmark of bench/ (attach, subsystems, workqueue, kernel); without NAME, the list
  help     this text`

/** Runs one command line; returns the process exit code. */
export const main = async (argv: ReadonlyArray<string>): Promise<number> => {
  const print = (line: string): void => void process.stdout.write(`${line}\n`)
  switch (argv[0]) {
    case 'demo':
      return runDemo(print)
    case 'check':
      return runCheck(argv.slice(1), print)
    case 'replay':
      return runReplay(argv.slice(1), print)
    case 'bench':
      return runBench(argv.slice(1), print)
    case undefined:
    case 'help':
    case '--help':
      print(usage)
      return argv[0] === undefined ? 2 : 0
    default:
      process.stderr.write(`cgtx: unknown command ${JSON.stringify(argv[0])}\n${usage}\n`)
      return 2
  }
}
