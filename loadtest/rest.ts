/**
 * `npm run loadtest:rest`: autocannon scenarios against the REST control plane (create, get, list, plan),
 * with a Fastify hello-world baseline measured in the same run on the same machine, so the result is a
 * ratio that survives a noisy host. Loopback only; every scenario is bounded in time.
 *
 *   node --import tsx loadtest/rest.ts [--duration 5] [--connections 20] [--rounds 3] [--json bench/rest.json]
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import Fastify from 'fastify';
import { startProduct } from './processes.js';
import { median } from './stats.js';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '5' },
    connections: { type: 'string', default: '20' },
    json: { type: 'string', default: 'bench/rest.json' },
    rounds: { type: 'string', default: '3' },
  },
});
const duration = Number(values.duration);
const connections = Number(values.connections);
const roundCount = Math.max(1, Math.min(10, Number(values.rounds)));

const document = {
  name: 'asr-frontend',
  nodes: [
    { id: 'mono', type: 'downmix' },
    { id: 'resample', type: 'resample', params: { sample_rate: 16000, quality: 'high' } },
    { id: 'gain', type: 'gain', params: { db: -3 } },
    { id: 'norm', type: 'normalize' },
    { id: 'vad', type: 'vad', inputs: ['norm'] },
  ],
  output: 'norm',
};

interface Row {
  scenario: string;
  target: string;
  requests_per_s: number;
  latency_p50_ms: number;
  latency_p99_ms: number;
  non_2xx: number;
  errors: number;
}

async function measure(
  scenario: string,
  target: string,
  url: string,
  opts: Partial<autocannon.Options> = {},
): Promise<Row> {
  process.stdout.write(`  ${scenario} (${target}) for ${duration} s … `);
  const r = await autocannon({ url, connections, duration, ...opts });
  const row: Row = {
    scenario,
    target,
    requests_per_s: r.requests.average,
    latency_p50_ms: r.latency.p50,
    latency_p99_ms: r.latency.p99,
    non_2xx: r.non2xx,
    errors: r.errors,
  };
  process.stdout.write(`${Math.round(row.requests_per_s)} req/s\n`);
  return row;
}

async function main() {
  console.log(
    `REST load test: ${connections} connections, ${duration} s per scenario, ${cpus().length} cores`,
  );
  const hello = Fastify({ logger: false });
  hello.get('/', async () => ({ hello: 'world' }));
  const helloUrl = await hello.listen({ port: 0, host: '127.0.0.1' });
  // Warn level: no per-request log lines (the hello-world baseline logs nothing either).
  const started = await startProduct({});
  const product = { ...started, url: started.api };
  try {
    const created = await fetch(`${product.url}/v1/pipelines`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(document),
    });
    if (created.status !== 201) throw new Error(`create failed: ${created.status} ${await created.text()}`);
    const { id } = (await created.json()) as { id: string };
    const body = JSON.stringify(document);
    const json = { 'content-type': 'application/json' };
    const scenarios: [string, string, Partial<autocannon.Options>][] = [
      ['get', `${product.url}/v1/pipelines/${id}`, {}],
      [
        'get, If-None-Match → 304',
        `${product.url}/v1/pipelines/${id}`,
        { headers: { 'if-none-match': `"${id}-v1"` } },
      ],
      ['list', `${product.url}/v1/pipelines?limit=20`, {}],
      ['plan', `${product.url}/v1/plan`, { method: 'POST', headers: json, body }],
      ['create', `${product.url}/v1/pipelines`, { method: 'POST', headers: json, body }],
    ];
    // Each round brackets the product's scenarios with the baseline, before and after, so that the
    // machine's drift within a round shows; ratios are taken per round, then their median.
    const rounds: { baseline_requests_per_s: number; rows: (Row & { ratio_vs_hello_world: number })[] }[] =
      [];
    for (let round = 0; round < roundCount; round++) {
      console.log(`round ${round + 1}/${roundCount}`);
      const before = await measure('hello-world', 'fastify baseline', helloUrl);
      const rows: Row[] = [];
      for (const [name, url, opts] of scenarios) rows.push(await measure(name, 'remotemedia', url, opts));
      const after = await measure('hello-world (again)', 'fastify baseline', helloUrl);
      const baseline = median([before.requests_per_s, after.requests_per_s]);
      rounds.push({
        baseline_requests_per_s: baseline,
        rows: [before, ...rows, after].map((r) => ({
          ...r,
          ratio_vs_hello_world: r.requests_per_s / baseline,
        })),
      });
    }
    const names = rounds[0]?.rows.map((r) => r.scenario) ?? [];
    const medianRows = names.map((name, i) => {
      const all = rounds.map((r) => r.rows[i] as Row & { ratio_vs_hello_world: number });
      const m = (f: (r: Row & { ratio_vs_hello_world: number }) => number) => median(all.map(f));
      return {
        scenario: name,
        target: all[0]?.target ?? '',
        requests_per_s: m((r) => r.requests_per_s),
        latency_p50_ms: m((r) => r.latency_p50_ms),
        latency_p99_ms: m((r) => r.latency_p99_ms),
        non_2xx: m((r) => r.non_2xx),
        errors: m((r) => r.errors),
        ratio_vs_hello_world: m((r) => r.ratio_vs_hello_world),
      };
    });
    console.log(
      `\nmedians over ${roundCount} round(s); ratio = median of per-round ratios (304s count as non-2xx)`,
    );
    console.log('scenario                     req/s    p50 ms  p99 ms  non-2xx  ratio vs hello-world');
    for (const r of medianRows) {
      console.log(
        `${r.scenario.padEnd(26)} ${Math.round(r.requests_per_s).toString().padStart(7)} ${r.latency_p50_ms
          .toFixed(1)
          .padStart(
            8,
          )} ${r.latency_p99_ms.toFixed(1).padStart(7)} ${String(r.non_2xx).padStart(8)}  ${r.ratio_vs_hello_world.toFixed(2)}×`,
      );
    }
    const result = {
      date: new Date().toISOString(),
      machine: { cores: cpus().length, cpu: cpus()[0]?.model },
      node: process.version,
      connections,
      duration_s: duration,
      rounds: roundCount,
      baseline_requests_per_s: median(rounds.map((r) => r.baseline_requests_per_s)),
      rows: medianRows,
      per_round: rounds,
    };
    mkdirSync(dirname(values.json), { recursive: true });
    writeFileSync(values.json, `${JSON.stringify(result, null, 2)}\n`);
    mergeIntoResults(result);
    console.log(`\nwritten to ${values.json} and bench/results.json ("rest")`);
  } finally {
    await product.stop();
    await hello.close();
  }
}

function mergeIntoResults(rest: object) {
  const path = 'bench/results.json';
  let all: Record<string, unknown> = {};
  try {
    all = JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    // first run
  }
  all.rest = rest;
  writeFileSync(path, `${JSON.stringify(all, null, 2)}\n`);
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
