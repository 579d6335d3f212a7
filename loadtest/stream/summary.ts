/**
 * Figures of a scenario: per target the median over runs, and the ratios to the baseline taken per
 * run (product and baseline of the same run), then their median.
 */
import { median, ratio } from '../stats.js';
import type { Measured } from './loadgen.js';

/** One run of a scenario: the baseline, then the product, under the same load. */
export interface RunPair {
  baseline: Measured;
  product: Measured;
}

export interface Figures {
  answered_per_s: number;
  rtt_p50_ms: number;
  rtt_p99_ms: number;
  rtt_max_ms: number;
  sent: number;
  lost: number;
  dropped: number;
  frame_errors: number;
  sessions_held: number;
  generator_cpu_pct: number;
  server_cpu_pct: number;
  /** The JS thread (`node`) and the native workers (`rm-worker`), % of one core. */
  server_js_pct: number;
  server_workers_pct: number;
}

export interface ScenarioSummary {
  runs: number;
  baseline: Figures;
  product: Figures;
  /** product / baseline, per run, then the median. */
  ratio: { answered_per_s: number; rtt_p99: number };
}

function figures(m: Measured): Figures {
  const r = m.report;
  return {
    answered_per_s: r.answered_per_s,
    rtt_p50_ms: r.rtt.p50_ms,
    rtt_p99_ms: r.rtt.p99_ms,
    rtt_max_ms: r.rtt.max_ms,
    sent: r.frames.sent,
    lost: r.frames.lost,
    dropped: r.frames.dropped,
    frame_errors: r.frames.frame_errors,
    sessions_held: r.sessions.held,
    generator_cpu_pct: r.generator.cpu_pct,
    server_cpu_pct: m.server?.cpu_pct ?? 0,
    server_js_pct: m.server?.threads_pct.node ?? 0,
    server_workers_pct: m.server?.threads_pct['rm-worker'] ?? 0,
  };
}

/** The median of every figure over the runs. */
function medianFigures(all: Figures[]): Figures {
  const keys = Object.keys(all[0] ?? {}) as (keyof Figures)[];
  return Object.fromEntries(keys.map((k) => [k, median(all.map((f) => f[k]))])) as unknown as Figures;
}

export function summarize(runs: RunPair[]): ScenarioSummary {
  return {
    runs: runs.length,
    baseline: medianFigures(runs.map((r) => figures(r.baseline))),
    product: medianFigures(runs.map((r) => figures(r.product))),
    ratio: {
      answered_per_s: median(
        runs.map((r) => ratio(r.product.report.answered_per_s, r.baseline.report.answered_per_s)),
      ),
      rtt_p99: median(runs.map((r) => ratio(r.product.report.rtt.p99_ms, r.baseline.report.rtt.p99_ms))),
    },
  };
}

const columns: [string, (f: Figures) => string][] = [
  ['frames/s', (f) => String(Math.round(f.answered_per_s))],
  ['rtt p50', (f) => f.rtt_p50_ms.toFixed(2)],
  ['p99', (f) => f.rtt_p99_ms.toFixed(2)],
  ['max', (f) => f.rtt_max_ms.toFixed(1)],
  ['sent', (f) => String(f.sent)],
  ['lost', (f) => String(f.lost)],
  ['dropped', (f) => String(f.dropped)],
  ['held', (f) => String(f.sessions_held)],
  ['gen cpu%', (f) => f.generator_cpu_pct.toFixed(0)],
  ['srv cpu%', (f) => f.server_cpu_pct.toFixed(0)],
  ['js%', (f) => f.server_js_pct.toFixed(0)],
  ['workers%', (f) => f.server_workers_pct.toFixed(0)],
];

/** Rows `label: figures` as an aligned text table. */
export function table(rows: [string, Figures][]): string {
  const head = ['target', ...columns.map(([h]) => h)];
  const body = rows.map(([label, f]) => [label, ...columns.map(([, cell]) => cell(f))]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i] ?? 0)).join('  ');
  return [line(head), ...body.map(line)].join('\n');
}
