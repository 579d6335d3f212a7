/**
 * loadtest/quiet.ts: the harness lowers its own helper threads and its `npm` to nice 19, and leaves
 * its main thread, and so every process it starts, at the priority it had.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

const run = promisify(execFile);
const quiet = fileURLToPath(new URL('../../loadtest/quiet.ts', import.meta.url));

// The harness: quiets itself, starts a child, reports the nice value of every thread of the three.
const harness = `
import { readdirSync, readFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { quietHarness } from ${JSON.stringify(quiet)};
const nice = (pid) => Object.fromEntries(readdirSync('/proc/' + pid + '/task').map((tid) => {
  const stat = readFileSync('/proc/' + pid + '/task/' + tid + '/stat', 'utf8');
  return [tid, Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16])];
}));
const lowered = quietHarness();
const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 5000)']);
await new Promise((r) => child.once('spawn', r));
console.log(JSON.stringify({ lowered, self: process.pid, me: nice(process.pid), npm: nice(process.ppid), child: nice(child.pid) }));
child.kill();
`;

// Its parent titles itself as npm does (\`npm run …\`), then relays what the harness printed.
const npm = `
process.title = 'npm run loadtest:stream';
const { execFileSync } = require('node:child_process');
process.stdout.write(execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', process.env.HARNESS]));
`;

it.runIf(process.platform === 'linux')(
  'lowers the helper threads of the harness and every thread of its npm, not its main thread or its children',
  async () => {
    const { stdout } = await run(process.execPath, ['-e', npm], {
      env: { ...process.env, HARNESS: harness },
    });
    const r = JSON.parse(stdout) as {
      lowered: number;
      self: number;
      me: Record<string, number>;
      npm: Record<string, number>;
      child: Record<string, number>;
    };
    const { [String(r.self)]: main, ...helpers } = r.me;
    expect(main).toBe(0);
    expect(Object.keys(helpers).length).toBeGreaterThan(0);
    expect(new Set(Object.values(helpers))).toEqual(new Set([19]));
    expect(new Set(Object.values(r.npm))).toEqual(new Set([19]));
    expect(new Set(Object.values(r.child))).toEqual(new Set([0]));
    expect(r.lowered).toBe(Object.keys(helpers).length + Object.keys(r.npm).length);
  },
);
