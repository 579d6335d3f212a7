/**
 * The OpenAPI document as the app generates it from its route schemas, independent of the environment
 * (fixed configuration, throwaway data directory), so `npm run openapi` is reproducible and the drift
 * test (test/routes/openapi.test.ts) compares like with like.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';

export const OPENAPI_PATH = new URL('../openapi/openapi.json', import.meta.url);

/** The document, serialized as committed (2-space JSON with a final newline). */
export async function generateOpenapi(): Promise<string> {
  const dataDir = mkdtempSync(join(tmpdir(), 'rm-openapi-'));
  const config = loadConfig(
    { DATA_DIR: dataDir, WORKERS: '1', PIN_CORES: 'false', RT_PORT: '0', LOG_LEVEL: 'silent' },
    [],
  );
  const app = await buildApp(config, { logger: false });
  try {
    await app.ready();
    return `${JSON.stringify(app.swagger(), null, 2)}\n`;
  } finally {
    await app.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}
