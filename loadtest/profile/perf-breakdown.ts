/**
 * Attributes the server's CPU samples from `perf script` (cpu-clock, call graphs) to the steps of one
 * frame's path (STYLE.md, "One frame's path"), by the frames on each sample's stack:
 *
 *   JS receive     the socket read and its callback (uWS or libuv stream read → session.onBinary)
 *   hand-off       inside the native push (copy into the worker's queue, wake the worker)
 *   worker         native worker threads (rm-worker-*): decode, DSP, encode, queue; park and wake-up apart
 *   hand-back      the thread-safe function's wake-up of the JS thread and the JS dispatch of outputs
 *   answer build   turning native outputs into JS values (objects, Buffers) inside that callback
 *   send           the answer's write to the socket (uWS send / libuv write down to the syscall)
 *
 * The rest of the process is shown too: the JS thread's epoll wait, its samples whose stacks are too
 * short to place (mostly malloc and memcpy), and the other threads (V8's concurrent GC).
 */

export const steps = [
  'JS receive',
  'hand-off (push)',
  'worker: decode, DSP, encode',
  'worker: park and wake-up',
  'hand-back (tsfn)',
  'answer build',
  'send',
  'JS thread: epoll wait',
  'JS thread: unattributed',
  'other threads (V8 GC helpers)',
] as const;
/** The steps on a frame's path (the rest of the process is shown apart). */
const ON_PATH = 7;
export type Step = (typeof steps)[number];

interface Sample {
  comm: string;
  tid: number;
  periodNs: number;
  /** Symbols, innermost first, each as `symbol (dso)`. */
  stack: string[];
}

/** Parses `perf script -F comm,tid,period,ip,sym,dso` output. */
export function parsePerfScript(text: string): Sample[] {
  const samples: Sample[] = [];
  let current: Sample | null = null;
  for (const line of text.split('\n')) {
    if (line.trim() === '') {
      if (current) samples.push(current);
      current = null;
    } else if (!/^\s/.test(line)) {
      // `comm  tid  period` (comm may contain spaces: take the last two fields as numbers).
      const parts = line.trim().split(/\s+/);
      const periodNs = Number(parts.at(-1));
      const tid = Number(parts.at(-2));
      current = { comm: parts.slice(0, -2).join(' '), tid, periodNs, stack: [] };
    } else if (current) {
      current.stack.push(line.trim().replace(/^[0-9a-f]+\s+/, ''));
    }
  }
  if (current) samples.push(current);
  return samples;
}

const has = (stack: string[], re: RegExp) => stack.some((f) => re.test(f));

// Call graphs come from frame pointers; libc and parts of V8 have none, so many stacks stop a few
// frames in. Each step is therefore also recognised by its innermost frames (the syscall wrapper,
// the napi conversion), and the checks run from the most specific step to the least.
const SEND =
  /^(__send|send|__libc_write|writev) \(|uWS_WebSocket_send|sys_sendto|sys_sendmsg|sys_writev|us_socket_write|uv__write|uv_try_write|tcp_sendmsg/;
const BUILD = /ToNapiValue|to_napi_value|napi_create_|napi_set_|Buffer::New|BackingStore::WrapAllocation/;
/**
 * push, its argument borrow and its futex wake of the worker (a bare `syscall` on the JS thread), and
 * napi's per-call unwrapping of `this` (push's, and recordLatency's from the answer path: stacks that
 * stop inside napi cannot tell the two apart).
 */
const HANDOFF =
  /fast::fast_push|fast::fast_wake|push_c_callback|NativeSession.*push|native_borrow|NativeBorrowGuard|^syscall \(|validate_type_tag|unwrap_raw|napi_unwrap/;
const HANDBACK =
  /fast::fast_take_batch|take_batch_into|uv__async_io|ThreadSafeFunction|threadsafe_function|call_js_cb|LatencyHistogram|JS:\S*(onOutput|dispatch|sendEvents)\b/;
const RECEIVE =
  /us_internal_dispatch_ready_poll|uWS::|ArrayBuffer_New|uv__stream_io|uv__read|sys_recvfrom|sys_read\b|tcp_recvmsg|JS:\S*(onBinary|message|admit)\b/;
const EPOLL = /epoll_wait|epoll_pwait/;
const PARK = /futex|finish_task_switch|schedule|park|condvar/i;

/** The step a sample of the server process belongs to; `mainTid` is the JS thread (= the pid). */
export function classify(s: Sample, mainTid: number): Step {
  const st = s.stack;
  if (s.comm.startsWith('rm-worker')) {
    return has(st.slice(0, 6), PARK) ? 'worker: park and wake-up' : 'worker: decode, DSP, encode';
  }
  if (s.tid !== mainTid) return 'other threads (V8 GC helpers)';
  if (has(st, SEND)) return 'send';
  if (has(st, BUILD)) return 'answer build';
  if (has(st, HANDOFF)) return 'hand-off (push)';
  if (has(st, HANDBACK)) return 'hand-back (tsfn)';
  if (has(st, RECEIVE)) return 'JS receive';
  if (has(st, EPOLL)) return 'JS thread: epoll wait';
  return 'JS thread: unattributed';
}

export interface Breakdown {
  window_s: number;
  frames: number;
  rows: { step: Step; cpu_ms: number; us_per_frame: number; share_pct: number }[];
  total_us_per_frame: number;
}

/** CPU per step over `frames` answered frames; the share is of the CPU on the frame's path. */
export function breakdown(samples: Sample[], mainTid: number, frames: number, windowS: number): Breakdown {
  const ns = new Map<Step, number>(steps.map((s) => [s, 0]));
  for (const s of samples) {
    const step = classify(s, mainTid);
    ns.set(step, (ns.get(step) ?? 0) + s.periodNs);
  }
  const onPath = steps.slice(0, ON_PATH).reduce((sum, s) => sum + (ns.get(s) ?? 0), 0);
  const round = (x: number, places: number) => Math.round(x * 10 ** places) / 10 ** places;
  const rows = steps.map((step) => {
    const n = ns.get(step) ?? 0;
    return {
      step,
      cpu_ms: round(n / 1e6, 1),
      us_per_frame: round(n / 1e3 / Math.max(1, frames), 2),
      share_pct: steps.indexOf(step) < ON_PATH ? round((100 * n) / Math.max(1, onPath), 1) : 0,
    };
  });
  return {
    window_s: windowS,
    frames,
    rows,
    total_us_per_frame: round(onPath / 1e3 / Math.max(1, frames), 2),
  };
}

/** The breakdown as a Markdown table. */
export function markdown(b: Breakdown): string {
  const lines = [
    `| step | µs per frame | share of the frame's path | CPU ms in ${b.window_s} s |`,
    '| --- | ---: | ---: | ---: |',
    ...b.rows.map(
      (r, i) =>
        `| ${r.step} | ${r.us_per_frame.toFixed(2)} | ${i < ON_PATH ? `${r.share_pct.toFixed(1)} %` : '—'} | ${r.cpu_ms} |`,
    ),
    `| **frame's path, total** | **${b.total_us_per_frame.toFixed(2)}** | 100 % | |`,
  ];
  return lines.join('\n');
}
