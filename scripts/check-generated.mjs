// Generated files must match what is committed: `npm ci` regenerates native/binding/index.{js,d.ts}
// (and, once it exists, the OpenAPI document), so a diff here means someone forgot to commit them.
// Outside CI a diff is reported but tolerated, so work in progress can still be tested.
import { execFileSync } from 'node:child_process';

const generated = ['native/binding/index.js', 'native/binding/index.d.ts', 'openapi/openapi.json'];

let diff = '';
try {
  diff = execFileSync('git', ['diff', '--stat', '--', ...generated], { encoding: 'utf8' });
} catch {
  console.log('check-generated: not a git checkout, skipped');
  process.exit(0);
}
if (diff.trim() === '') {
  console.log('check-generated: generated files match the commit');
} else if (process.env.CI) {
  console.error(
    `check-generated: generated files drifted from the commit; rebuild and commit them:\n${diff}`,
  );
  process.exit(1);
} else {
  console.warn(`check-generated: generated files differ from the commit (fails in CI):\n${diff}`);
}
