/**
 * CPU of a process and of its threads by name, from /proc (proc(5)), between two samples: the server's
 * side of a load run (the generator measures its own with getrusage).
 */
import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second (`getconf CLK_TCK`; 100 on Linux). */
const CLK_TCK = 100;

export interface ProcSample {
  at: number;
  ticks: number;
  /** Ticks by thread name, with trailing digits dropped (`rm-worker-1` → `rm-worker`). */
  threads: Map<string, number>;
  rssMb: number;
}

export interface CpuUsage {
  /** % of one core, whole process. */
  cpu_pct: number;
  rss_mb: number;
  /** % of one core by thread name (the JS thread is `node`, native workers `rm-worker`). */
  threads_pct: Record<string, number>;
}

/** utime + stime of a `stat` line, and the fields after the command name. */
function ticksOf(stat: string): { ticks: number; fields: string[] } {
  // Fields after "(comm)": state is field 3, utime 14, stime 15, rss 24 (numbered from 1).
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { ticks: Number(fields[11]) + Number(fields[12]), fields };
}

export function sample(pid: number): ProcSample | null {
  try {
    const { ticks, fields } = ticksOf(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    const threads = new Map<string, number>();
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
        const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')).replace(/[-_ ]?\d+$/, '');
        threads.set(name, (threads.get(name) ?? 0) + ticksOf(stat).ticks);
      } catch {
        // The thread ended between the listing and the read.
      }
    }
    return { at: performance.now(), ticks, threads, rssMb: (Number(fields[21]) * 4096) / 2 ** 20 };
  } catch {
    return null;
  }
}

export function usageBetween(a: ProcSample | null, b: ProcSample | null): CpuUsage | null {
  if (a === null || b === null || b.at <= a.at) return null;
  const seconds = (b.at - a.at) / 1000;
  const pct = (ticks: number) => Math.round((ticks / CLK_TCK / seconds) * 1000) / 10;
  const threads_pct: Record<string, number> = {};
  for (const [name, ticks] of b.threads) {
    const p = pct(ticks - (a.threads.get(name) ?? 0));
    if (p >= 0.5) threads_pct[name] = p;
  }
  return { cpu_pct: pct(b.ticks - a.ticks), rss_mb: Math.round(b.rssMb), threads_pct };
}
