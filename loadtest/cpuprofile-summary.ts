/**
 * Summarises a V8 `.cpuprofile` (from `node --cpu-prof`, e.g. `npm run loadtest:stream -- --cpu-prof`):
 * self time per function and per source (project file, dependency, Node internals, native/GC), as a
 * share of the profiled wall time. Only the JS thread is profiled; native workers are not in it.
 *
 *   node --import tsx loadtest/cpuprofile-summary.ts bench/cpuprof/<file>.cpuprofile [--top 25]
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { top: { type: 'string', default: '25' } },
});
const file = positionals[0];
if (file === undefined) throw new Error('usage: cpuprofile-summary.ts <file.cpuprofile> [--top N]');
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;

const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const selfUs = new Map<number, number>();
for (let i = 0; i < profile.samples.length; i++) {
  const id = profile.samples[i] as number;
  selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
}
const totalUs = profile.endTime - profile.startTime;

function source(url: string, name: string): string {
  if (name === '(idle)' || name === '(program)' || name === '(garbage collector)') return name;
  if (url === '') return '(native or builtin)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1] as string;
  if (url.startsWith('node:')) return 'node internals';
  const at = url.search(/\/(dist|src|loadtest)\//);
  return at === -1 ? url : url.slice(at + 1).replace(/\.js$/, '');
}

const perFunction = new Map<string, number>();
const perSource = new Map<string, number>();
for (const [id, us] of selfUs) {
  const f = (byId.get(id) as ProfileNode).callFrame;
  const src = source(f.url, f.functionName);
  const key = `${f.functionName || '(anonymous)'}  ${src}${f.url ? `:${f.lineNumber + 1}` : ''}`;
  perFunction.set(key, (perFunction.get(key) ?? 0) + us);
  perSource.set(src, (perSource.get(src) ?? 0) + us);
}

const pct = (us: number) => `${((us / totalUs) * 100).toFixed(1).padStart(5)} %`;
const print = (title: string, m: Map<string, number>, top: number) => {
  process.stdout.write(`\n${title}\n`);
  for (const [k, us] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    process.stdout.write(`  ${pct(us)}  ${(us / 1000).toFixed(0).padStart(7)} ms  ${k}\n`);
  }
};
process.stdout.write(`${file}: ${(totalUs / 1e6).toFixed(1)} s profiled\n`);
print('self time by source', perSource, 20);
print('self time by function', perFunction, Number(values.top));
