/**
 * `npm run bench:native`'s JavaScript half runs on the built addon and dist/ (it once called a session
 * method that had been replaced, and failed). A quick run into a file of its own, so the committed
 * bench/results.json keeps the figures the README cites.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../../', import.meta.url));

it('bench:native --quick --no-rust measures the hand-off and the pool end to end, with session stats', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rm-bench-native-'));
  try {
    const out = join(dir, 'results.json');
    await run(process.execPath, ['scripts/bench-native.mjs', '--quick', '--no-rust', `--out=${out}`], {
      cwd: root,
      timeout: 60_000,
    });
    const { native } = JSON.parse(readFileSync(out, 'utf8'));
    expect(native.quick).toBe(true);
    expect(native.js.handoff.median_ns).toBeGreaterThan(0);
    const e2e = native.js.end_to_end;
    expect(e2e.frames_per_s).toBeGreaterThan(0);
    // Read from the last repetition's session: every frame of it was processed.
    expect(e2e.engine_process_us.count).toBe(e2e.frames_per_rep);
    expect(e2e.queue_wait_us.count).toBe(e2e.frames_per_rep);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
