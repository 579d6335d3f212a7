/** `npm run loadtest:stream -- --help` answers with its usage, and a bad flag with the usage and exit 2. */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../../', import.meta.url));

it('npm run loadtest:stream -- --help prints the usage; an unknown flag exits 2 with it', async () => {
  const help = await run('npm', ['run', '-s', 'loadtest:stream', '--', '--help'], { cwd: root });
  expect(help.stdout).toMatch(/--sessions/);
  const bad = await run('npm', ['run', '-s', 'loadtest:stream', '--', '--no-such-flag'], { cwd: root }).catch(
    (err: { code: number; stderr: string }) => err,
  );
  expect('code' in bad ? bad.code : 0).toBe(2);
  expect(bad.stderr).toMatch(/--sessions/);
});
