/**
 * The SQLite store thread (see sqlite-thread.ts): owns every SQLite connection of the process and runs
 * each request as one synchronous transaction, so the fsync of a `synchronous=FULL` commit waits here,
 * never on the thread that carries audio.
 *
 *   JS thread ── { seq, op, handle, args } ──▶ store thread: stores[handle][op](...args)
 *             ◀── { seq, ok: true, value } | { seq, ok: false, error: { name, code, message } }
 *   `open` answers a new handle; `close` closes one.
 */
import { parentPort } from 'node:worker_threads';
import type { OpenOptions } from './db.js';
import { SyncSqliteStore } from './sqlite.js';

export type Op = 'create' | 'get' | 'versionOf' | 'update' | 'delete' | 'list';

export type Request =
  | { seq: number; op: 'open'; dataDir: string; options: OpenOptions }
  | { seq: number; op: Op | 'close'; handle: number; args: unknown[] };

export interface SerializedError {
  name: string;
  code?: string;
  message: string;
}

export type Reply =
  | { seq: number; ok: true; value: unknown }
  | { seq: number; ok: false; error: SerializedError };

function serialize(err: unknown): SerializedError {
  const code = (err as { code?: unknown } | null)?.code;
  return {
    name: err instanceof Error ? err.name : 'Error',
    message: err instanceof Error ? err.message : String(err),
    ...(typeof code === 'string' ? { code } : {}),
  };
}

const port = parentPort;
if (port === null) throw new Error('sqlite-worker.ts runs as a worker thread');

const stores = new Map<number, SyncSqliteStore>();
let nextHandle = 1;

function run(request: Request): unknown {
  if (request.op === 'open') {
    const handle = nextHandle++;
    stores.set(handle, SyncSqliteStore.open(request.dataDir, request.options));
    return handle;
  }
  const store = stores.get(request.handle);
  if (store === undefined) throw new Error('the store is closed');
  if (request.op === 'close') {
    stores.delete(request.handle);
    store.close();
    return undefined;
  }
  return (store[request.op] as (...a: unknown[]) => unknown).apply(store, request.args);
}

port.on('message', (request: Request) => {
  let reply: Reply;
  try {
    reply = { seq: request.seq, ok: true, value: run(request) };
  } catch (err) {
    reply = { seq: request.seq, ok: false, error: serialize(err) };
  }
  port.postMessage(reply);
});
