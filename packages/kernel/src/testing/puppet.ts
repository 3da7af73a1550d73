/**
 * A puppet process: a small Python program, started by the test harness,
 * that forks, starts and ends threads, kills its children and reaps them on
 * command, so a scenario can make a *real* process do what the model's
 * `fork` / `exit` / `reap` do to a model task. Commands go in on stdin, one a
 * line; each answers one line (`ok [N]` or `err ERRNO`).
 *
 * @module testing/puppet
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'

const script = String.raw`
import os, sys, threading, signal, time, errno
events = {}
children = set()
def reply(text):
    sys.stdout.write(text + "\n"); sys.stdout.flush()
def worker(event, box, started):
    box.append(threading.get_native_id()); started.set(); event.wait()
def zombie(pid):
    for _ in range(2000):
        try:
            with open("/proc/%d/stat" % pid) as f:
                if f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"): return True
        except OSError: return True
        time.sleep(0.001)
    return False
def thread_gone(tid):
    # join() returns once Python is done with the thread, a moment before the
    # kernel has released it; until then it is still listed in its cgroup.
    # A deadline, not a count of polls: a throttled cgroup stretches each sleep.
    deadline = time.monotonic() + 1
    while os.path.exists("/proc/self/task/%d" % tid):
        if time.monotonic() > deadline: return False
        time.sleep(0.001)
    return True
reply("ok %d" % os.getpid())
for line in sys.stdin:
    words = line.split()
    if not words: continue
    cmd = words[0]
    try:
        if cmd == "thread":
            event, box, started = threading.Event(), [], threading.Event()
            t = threading.Thread(target=worker, args=(event, box, started), daemon=True)
            t.start(); started.wait()
            events[box[0]] = (event, t); reply("ok %d" % box[0])
        elif cmd == "endthread":
            tid = int(words[1]); event, t = events.pop(tid); event.set(); t.join()
            reply("ok" if thread_gone(tid) else "err ETIMEDOUT")
        elif cmd == "fork":
            pid = os.fork()
            if pid == 0:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                while True: signal.pause()
            children.add(pid); reply("ok %d" % pid)
        elif cmd == "kill":
            pid = int(words[1]); os.kill(pid, signal.SIGKILL)
            reply("ok" if zombie(pid) else "err ETIMEDOUT")
        elif cmd == "policy":
            policy = {"fifo": os.SCHED_FIFO, "rr": os.SCHED_RR, "normal": os.SCHED_OTHER}[words[2]]
            os.sched_setscheduler(int(words[1]), policy, os.sched_param(10 if policy != os.SCHED_OTHER else 0)); reply("ok")
        elif cmd == "affinity":
            os.sched_setaffinity(int(words[1]), {int(cpu) for cpu in words[2].split(",")}); reply("ok")
        elif cmd == "reap":
            pid = int(words[1]); os.waitpid(pid, 0); children.discard(pid); reply("ok")
        elif cmd == "exit":
            for pid in children:
                try: os.kill(pid, signal.SIGKILL)
                except OSError: pass
            for pid in children:
                try: os.waitpid(pid, 0)
                except OSError: pass
            os._exit(0)
        else:
            reply("err EINVAL")
    except RuntimeError:
        reply("err EAGAIN")
    except OSError as e:
        reply("err " + errno.errorcode.get(e.errno, "EIO"))
`

/** The Python interpreter used for puppets (the system one: no shim process in between). */
export const pythonPath = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3'

/** A running puppet process. */
export class Puppet {
  private readonly pending: Array<(line: string) => void> = []
  private buffer = ''
  /** Resolves once the process has exited and been reaped by Node. */
  readonly exited: Promise<void>
  private alive = true

  private constructor(
    private readonly child: ChildProcess,
    /** Its process id. */
    readonly pid: number,
  ) {
    this.exited = new Promise((resolve) => child.once('exit', () => {
      this.alive = false
      // Killed from outside (cgroup.kill, SIGKILL): every pending command fails.
      for (const answer of this.pending.splice(0)) answer('err ESRCH')
      resolve()
    }))
    // A write racing with its death must not crash the harness.
    child.stdin!.on('error', () => undefined)
  }

  /** Starts a puppet; resolves once it has answered with its pid. */
  static start(): Promise<Puppet> {
    const child = spawn(pythonPath, ['-u', '-c', script], { stdio: ['pipe', 'pipe', 'inherit'] })
    return new Promise((resolve, reject) => {
      let buffer = ''
      const onData = (chunk: Buffer): void => {
        buffer += chunk.toString()
        const newline = buffer.indexOf('\n')
        if (newline < 0) return
        child.stdout!.off('data', onData)
        const first = buffer.slice(0, newline)
        const puppet = new Puppet(child, Number(first.split(' ')[1]))
        puppet.buffer = buffer.slice(newline + 1)
        child.stdout!.on('data', (more: Buffer) => puppet.receive(more))
        resolve(puppet)
      }
      child.stdout!.on('data', onData)
      child.once('error', reject)
      child.once('exit', (code) => reject(new Error(`puppet exited with ${code} before starting`)))
    })
  }

  /** True until the process has exited. */
  get running(): boolean {
    return this.alive
  }

  /**
   * Sends one command; resolves with `{ ok, value }` from its one-line
   * answer, or `ETIMEDOUT` if none comes within `timeoutMs` (a frozen
   * puppet cannot answer; its late answer is discarded when it comes).
   */
  command(line: string, timeoutMs = 5000): Promise<{ readonly ok: boolean; readonly value: string }> {
    if (!this.alive) return Promise.resolve({ ok: false, value: 'ESRCH' })
    return new Promise((resolve) => {
      let answered = false
      const timer = setTimeout(() => {
        answered = true
        resolve({ ok: false, value: 'ETIMEDOUT' })
      }, timeoutMs)
      this.pending.push((answer) => {
        clearTimeout(timer)
        if (answered) return
        const [status, ...rest] = answer.split(' ')
        resolve({ ok: status === 'ok', value: rest.join(' ') })
      })
      this.child.stdin!.write(`${line}\n`)
    })
  }

  /**
   * Exits (its forked children are killed and reaped first) and waits until
   * Node has reaped it; false if it has not within `timeoutMs` (frozen).
   */
  async exit(timeoutMs = 5000): Promise<boolean> {
    if (this.alive) this.child.stdin!.write('exit\n')
    let timer: NodeJS.Timeout | undefined
    const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)))
    const done = await Promise.race([this.exited.then(() => true), timedOut])
    clearTimeout(timer)
    return done
  }

  /** SIGKILL by pid, unless it has already exited (its pid may then belong to someone else). */
  kill(): void {
    if (this.alive) this.child.kill('SIGKILL')
  }

  private receive(chunk: Buffer): void {
    this.buffer += chunk.toString()
    for (let newline = this.buffer.indexOf('\n'); newline >= 0; newline = this.buffer.indexOf('\n')) {
      const line = this.buffer.slice(0, newline)
      this.buffer = this.buffer.slice(newline + 1)
      this.pending.shift()?.(line)
    }
  }
}
