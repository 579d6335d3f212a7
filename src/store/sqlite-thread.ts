/**
 * The embedded SQLite store (docs/configuration.md), off the JS thread. One store thread per process
 * (sqlite-worker.ts) owns every SQLite connection; each call of a `SqliteStore` is one message to it.
 * A commit with `synchronous=FULL` waits for an fsync, which can take tens of milliseconds on a busy
 * disk: on the JS thread that would stall every session's audio, on the store thread it delays only
 * other store calls. The thread is started on first use and keeps the process alive only while a store
 * is open.
 */
import { Worker } from 'node:worker_threads';
import type { OpenOptions } from './db.js';
import { isStoreErrorCode, StoreError } from './errors.js';
import {
  ChangeFeed,
  type GetOptions,
  type ListOptions,
  type Page,
  type PipelineChange,
  type PipelineInput,
  type PipelineStore,
  type PipelineVersion,
  type Precondition,
  pageLimit,
  toJson,
} from './model.js';
import type { Op, Reply, Request, SerializedError } from './sqlite-worker.js';

/** Request without its sequence number (distributive over the union). */
type Call = Request extends infer R ? (R extends Request ? Omit<R, 'seq'> : never) : never;

function revive(error: SerializedError): Error {
  if (isStoreErrorCode(error.code)) return new StoreError(error.code, error.message);
  if (error.name === 'RangeError') return new RangeError(error.message);
  if (error.name === 'TypeError') return new TypeError(error.message);
  return new StoreError('RM_ERR_STORE', `store failure: ${error.message}`);
}

/** Timestamps come from this thread's clock, the one callers (and a test's fake clock) see. */
function now(): string {
  return new Date().toISOString();
}

/**
 * The worker's entry: the compiled `.js` beside this file; or, when this module runs from source under
 * a TypeScript loader (tests, tsx), the `.ts` source behind tsx's loader, registered inside the worker
 * (a worker does not inherit the loader hooks of the thread that starts it).
 */
function startWorker(): Worker {
  if (!import.meta.url.endsWith('.ts')) {
    return new Worker(new URL('./sqlite-worker.js', import.meta.url));
  }
  const loader = import.meta.resolve('tsx/esm/api');
  const entry = new URL('./sqlite-worker.ts', import.meta.url).href;
  const boot = `import { register } from ${JSON.stringify(loader)}; register(); await import(${JSON.stringify(entry)});`;
  return new Worker(new URL(`data:text/javascript,${encodeURIComponent(boot)}`));
}

/** The process's store thread and its pending calls. */
class StoreThread {
  private readonly worker = startWorker();
  private readonly pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  private seq = 0;
  private openStores = 0;
  exited = false;

  constructor(onExit: () => void) {
    this.worker.unref();
    this.worker.on('message', (reply: Reply) => {
      const waiting = this.pending.get(reply.seq);
      if (waiting === undefined) return;
      this.pending.delete(reply.seq);
      this.keepAlive();
      if (reply.ok) waiting.resolve(reply.value);
      else waiting.reject(revive(reply.error));
    });
    // A crash of the thread fails what was pending (on 'exit'); it never takes the process down.
    this.worker.on('error', () => {});
    this.worker.once('exit', () => {
      this.exited = true;
      for (const { reject } of this.pending.values()) {
        reject(new StoreError('RM_ERR_STORE', 'the SQLite store thread has stopped'));
      }
      this.pending.clear();
      onExit();
    });
  }

  call<T>(request: Call): Promise<T> {
    if (this.exited)
      return Promise.reject(new StoreError('RM_ERR_STORE', 'the SQLite store thread has stopped'));
    const seq = ++this.seq;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(seq, { resolve: resolve as (v: unknown) => void, reject });
      this.keepAlive();
      try {
        this.worker.postMessage({ ...request, seq });
      } catch (err) {
        // What structured clone cannot copy (functions, symbols) is not a JSON document either.
        this.pending.delete(seq);
        this.keepAlive();
        reject(new TypeError(`a pipeline definition must be JSON-serializable: ${(err as Error).message}`));
      }
    });
  }

  opened(delta: 1 | -1): void {
    this.openStores += delta;
    this.keepAlive();
  }

  /** The thread keeps the process alive while a store is open or a call is waiting for its answer. */
  private keepAlive(): void {
    if (this.openStores > 0 || this.pending.size > 0) this.worker.ref();
    else this.worker.unref();
  }
}

let thread: StoreThread | undefined;

function storeThread(): StoreThread {
  if (thread === undefined || thread.exited) {
    const started = new StoreThread(() => {
      if (thread === started) thread = undefined;
    });
    thread = started;
  }
  return thread;
}

export class SqliteStore<D = unknown> implements PipelineStore<D> {
  readonly kind = 'sqlite';
  private readonly feed = new ChangeFeed();
  /** One process owns a database file (DATA_DIR): every write goes through this object. */
  readonly hearsEveryChange = true;
  private closed = false;

  private constructor(
    private readonly thread: StoreThread,
    private readonly handle: number,
  ) {}

  /** Opens (creating and migrating) `${dataDir}/remotemedia.db` on the store thread. */
  static async open<D = unknown>(dataDir: string, options: OpenOptions = {}): Promise<SqliteStore<D>> {
    const thread = storeThread();
    const handle = await thread.call<number>({ op: 'open', dataDir, options });
    thread.opened(1);
    return new SqliteStore<D>(thread, handle);
  }

  private call<T>(op: Op, args: unknown[]): Promise<T> {
    if (this.closed) return Promise.reject(new StoreError('RM_ERR_STORE', 'the store is closed'));
    return this.thread.call<T>({ op, handle: this.handle, args });
  }

  async create(input: PipelineInput<D>): Promise<PipelineVersion<D>> {
    toJson(input.definition);
    const created = await this.call<PipelineVersion<D>>('create', [input, now()]);
    this.feed.emit({ kind: 'created', id: created.id, version: created.version });
    return created;
  }

  get(id: string, version?: number, options: GetOptions = {}): Promise<PipelineVersion<D> | undefined> {
    return this.call('get', [id, version, options]);
  }

  versionOf(id: string, version?: number): Promise<number | undefined> {
    return this.call('versionOf', [id, version]);
  }

  async update(
    id: string,
    input: PipelineInput<D>,
    precondition: Precondition = {},
  ): Promise<PipelineVersion<D>> {
    toJson(input.definition);
    const updated = await this.call<PipelineVersion<D>>('update', [id, input, precondition, now()]);
    this.feed.emit({ kind: 'updated', id, version: updated.version });
    return updated;
  }

  async delete(id: string, precondition: Precondition = {}): Promise<boolean> {
    const deleted = await this.call<boolean>('delete', [id, precondition, now()]);
    if (deleted) this.feed.emit({ kind: 'deleted', id });
    return deleted;
  }

  async list(options: ListOptions = {}): Promise<Page<D>> {
    pageLimit(options); // a caller bug is refused here, as in every store
    return this.call('list', [options]);
  }

  /** Hears this store's own writes: an SQLite file serves one instance (several share PostgreSQL). */
  subscribe(listener: (change: PipelineChange) => void): () => void {
    return this.feed.subscribe(listener);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.thread.opened(-1);
    await this.thread.call({ op: 'close', handle: this.handle, args: [] }).catch(() => undefined);
  }
}
