/**
 * The reference docs in docs/ stay in line with the code: every setting, every error code and every node
 * type is documented, and no page links to a file outside the repository.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { flagName, settingNames } from '../src/config.js';
import { errorCatalog } from '../src/errors.js';
import { nodeTypes } from '../src/pipeline/catalog.js';
import { pipelineIssueCodes } from '../src/pipeline/validate.js';
import { CloseCode } from '../src/realtime/protocol.js';

const docsDir = fileURLToPath(new URL('../docs/', import.meta.url));
const page = (name: string) => readFileSync(docsDir + name, 'utf8');

describe('docs/', () => {
  it('configuration.md has a row for every setting, with its flag', () => {
    const rows = page('configuration.md')
      .split('\n')
      .filter((line) => line.startsWith('| `'));
    for (const name of settingNames) {
      const row = rows.find((r) => r.startsWith(`| \`${name}\` |`));
      expect(row, name).toBeDefined();
      expect(row).toContain(`\`${flagName(name)}\``);
    }
  });

  it('errors.md names every code of the catalog, every pipeline problem code and every close code', () => {
    const errors = page('errors.md');
    for (const code of Object.keys(errorCatalog)) expect(errors, code).toContain(`\`${code}\``);
    const pipelines = page('pipelines.md');
    for (const code of Object.keys(pipelineIssueCodes)) expect(pipelines, code).toContain(`\`${code}\``);
    for (const code of Object.values(CloseCode)) expect(errors).toMatch(new RegExp(`^\\| ${code} \\|`, 'm'));
  });

  it('pipelines.md describes every node type', () => {
    const pipelines = page('pipelines.md');
    for (const type of nodeTypes) expect(pipelines, type).toMatch(new RegExp(`^\\| \`${type}\` \\|`, 'm'));
  });

  it('every relative link of every page resolves to a file inside the repository', () => {
    const root = fileURLToPath(new URL('../', import.meta.url));
    for (const name of readdirSync(docsDir).filter((f) => f.endsWith('.md'))) {
      for (const [, target] of page(name).matchAll(/\]\(([^)#]+)(?:#[^)]*)?\)/g)) {
        if (target === undefined || /^[a-z]+:/.test(target)) continue;
        const resolved = resolve(docsDir, target);
        expect(resolved.startsWith(root), `${name}: ${target}`).toBe(true);
        expect(existsSync(resolved), `${name}: ${target}`).toBe(true);
      }
    }
  });
});
