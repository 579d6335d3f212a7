/**
 * Latency against load: one paced scenario at several session counts, the product and its echo
 * baseline at each; gives the capacity (the most sessions with client p99 ≤ the budget, nothing lost
 * or dropped, every session held) and a chart (loadtest/chart.ts).
 */
import { renderChart, type Series } from '../chart.js';
import type { Measured } from './loadgen.js';

export interface SweepPoint {
  sessions: number;
  target: string;
  rtt_p50_ms: number;
  rtt_p99_ms: number;
  lost: number;
  dropped: number;
  held: number;
  generator_cpu_pct: number;
  server_cpu_pct: number;
}

export function point(sessions: number, target: string, m: Measured): SweepPoint {
  const r = m.report;
  return {
    sessions,
    target,
    rtt_p50_ms: r.rtt.p50_ms,
    rtt_p99_ms: r.rtt.p99_ms,
    lost: r.frames.lost,
    dropped: r.frames.dropped,
    held: r.sessions.held,
    generator_cpu_pct: r.generator.cpu_pct,
    server_cpu_pct: m.server?.cpu_pct ?? 0,
  };
}

/** The most sessions of `target` that kept p99 ≤ `budgetMs` with nothing lost or dropped; 0 if none. */
export function capacity(points: SweepPoint[], target: string, budgetMs: number): number {
  const ok = points.filter(
    (p) =>
      p.target === target &&
      p.rtt_p99_ms <= budgetMs &&
      p.lost === 0 &&
      p.dropped === 0 &&
      p.held === p.sessions,
  );
  return Math.max(0, ...ok.map((p) => p.sessions));
}

export function chart(title: string, points: SweepPoint[]): string {
  const colors = ['#1f77b4', '#7fb3d5'];
  const targets = [...new Set(points.map((p) => p.target))];
  const series: Series[] = targets.map((t, i) => ({
    label: `${t} client p99`,
    color: colors[i % colors.length] ?? '#555',
    dashed: i > 0,
    points: points
      .filter((p) => p.target === t)
      .map((p) => ({ x: p.sessions, y: Math.max(0.01, p.rtt_p99_ms) })),
  }));
  return renderChart(title, 'sessions', 'client round trip p99 (ms, log)', series);
}
