/**
 * Picks the store from the configuration (docs/configuration.md, README.md "Deployment"): PostgreSQL when `STORE_URL` is set, otherwise
 * the embedded SQLite file in `DATA_DIR`.
 */
import type { PipelineStore } from './model.js';
import { PostgresStore } from './postgres.js';
import { SqliteStore } from './sqlite-thread.js';

export interface StoreSettings {
  /** `postgres://…` or empty for the embedded store. */
  storeUrl: string;
  dataDir: string;
  storePoolMax: number;
  storeStatementTimeoutMs: number;
  storeConnectTimeoutMs: number;
}

export function openStore<D = unknown>(settings: StoreSettings): Promise<PipelineStore<D>> {
  if (settings.storeUrl !== '') {
    return PostgresStore.open<D>(settings.storeUrl, {
      poolMax: settings.storePoolMax,
      statementTimeoutMs: settings.storeStatementTimeoutMs,
      connectTimeoutMs: settings.storeConnectTimeoutMs,
    });
  }
  return SqliteStore.open<D>(settings.dataDir, { busyTimeoutMs: settings.storeStatementTimeoutMs });
}
