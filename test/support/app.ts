import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.js';
import { type Config, loadConfig } from '../../src/config.js';

/** A config for tests: a fresh data directory, one unpinned worker, no uWS listener, overridable. */
export function testConfig(env: Record<string, string> = {}): Config {
  const dataDir = mkdtempSync(join(tmpdir(), 'rm-test-'));
  return loadConfig(
    { DATA_DIR: dataDir, WORKERS: '1', PIN_CORES: 'false', RT_PORT: '0', LOG_LEVEL: 'silent', ...env },
    [],
  );
}

/** A built (not listening) app on a fresh data directory. */
export function testApp(env: Record<string, string> = {}): Promise<FastifyInstance> {
  return buildApp(testConfig(env), { logger: false });
}
