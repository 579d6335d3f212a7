/**
 * Keeps the harness's own Node processes off the cores it measures.
 *
 * An idle Node process still collects garbage: V8's memory reducer starts a full collection about 8 s
 * after allocation slows, then a few more half a second apart, and their marking runs on V8's helper
 * threads. `perf sched` of paced runs on a machine with two cores caught the helper threads of `npm`,
 * of the harness and of the idle echo server each waking about 8 s after its process started or went
 * quiet, and taking 8–35 ms of CPU within 100 ms from the server under load; the 100 ms windows they
 * fell in had a client p99 of 15–22 ms against 2–9 ms around them (README, "Benchmarks").
 *
 * Lowering a thread's priority needs no privilege; raising it back does, and a child process inherits
 * the priority of the thread that starts it. So the harness lowers every thread of its own process but
 * the main thread, which starts the servers and the generator, and every thread of the `npm` that
 * launched it, which starts nothing more.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { setPriority } from 'node:os';

/** The lowest priority there is (nice 19): such a thread runs on a core only when nothing else wants it. */
const LOWEST = 19;

function threadsOf(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).map(Number);
  } catch {
    return []; // not Linux, or gone
  }
}

function parentOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 4 (ppid), after "(comm)", which may itself hold spaces or parentheses.
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

/**
 * True for a process running the npm CLI: npm titles itself `npm run …` (its argv then reads so), and
 * before that it is `node …/npm-cli.js`.
 */
function isNpm(pid: number): boolean {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return /^npm( |$)/.test(argv[0] ?? '') || /(^|\/)npm-cli\.js$/.test(argv[1] ?? '');
  } catch {
    return false;
  }
}

function lower(tids: number[]): number {
  let lowered = 0;
  for (const tid of tids) {
    try {
      setPriority(tid, LOWEST);
      lowered += 1;
    } catch {
      // exited meanwhile
    }
  }
  return lowered;
}

/**
 * Lowers to nice 19 every thread of this process but its main thread, and every thread of the `npm`
 * among its nearest ancestors (`npm run` starts a shell that starts this process). Returns how many
 * threads it lowered. Linux only; elsewhere it lowers nothing.
 */
export function quietHarness(): number {
  let lowered = lower(threadsOf(process.pid).filter((tid) => tid !== process.pid));
  let pid: number | undefined = process.ppid;
  for (let hop = 0; hop < 3 && pid !== undefined && pid > 1; hop++) {
    if (isNpm(pid)) {
      lowered += lower(threadsOf(pid));
      break;
    }
    pid = parentOf(pid);
  }
  return lowered;
}
