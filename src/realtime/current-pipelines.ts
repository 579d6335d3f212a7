/**
 * The current version of each pipeline sessions were recently opened on, kept so that an upgrade can be
 * admitted synchronously, inside the transport's own callback (uWebSockets.js answers an upgrade finished
 * later outside its cork, which costs a write and a warning per upgrade; docs/protocol.md §1).
 *
 * An entry is trusted only while the store hears every committed write (`hearsEveryChange`) and is
 * forgotten on each change to its pipeline, so a session never opens on a version older than the last
 * write this instance heard of. Bounded in bytes (of the documents' JSON): the least recently used entry
 * goes first.
 */
import type { PipelineLookup } from './admission.js';
import type { PipelineRef } from './session.js';

export interface PipelineSource {
  /** Reads the current version from the store (undefined: no such live pipeline). */
  load(id: string): Promise<PipelineRef | undefined>;
  readonly hearsEveryChange: boolean;
}

export class CurrentPipelines {
  private readonly entries = new Map<string, { ref: PipelineRef; bytes: number }>();
  private bytes = 0;
  /** Bumped by every change: a load that started before one may hold what it replaced. */
  private epoch = 0;

  constructor(
    private readonly source: PipelineSource,
    private readonly maxBytes = 8 * 1024 * 1024,
  ) {}

  /** The pipeline from memory when it can be trusted, else from the store. */
  readonly lookup: PipelineLookup = (id) => {
    if (!this.source.hearsEveryChange) {
      this.forget();
      return this.source.load(id);
    }
    const hit = this.entries.get(id);
    if (hit !== undefined) {
      this.entries.delete(id);
      this.entries.set(id, hit);
      return hit.ref;
    }
    const epoch = this.epoch;
    return this.source.load(id).then((ref) => {
      if (ref !== undefined && epoch === this.epoch && this.source.hearsEveryChange) this.remember(ref);
      return ref;
    });
  };

  /** A pipeline changed or was deleted (undefined: anything may have changed). */
  forget(id?: string): void {
    this.epoch += 1;
    for (const key of id === undefined ? [...this.entries.keys()] : [id]) this.forgetOne(key);
  }

  get size(): number {
    return this.entries.size;
  }

  /** Bytes of documents held. */
  get heldBytes(): number {
    return this.bytes;
  }

  private remember(ref: PipelineRef): void {
    const bytes = JSON.stringify(ref.definition).length + ref.id.length;
    if (bytes > this.maxBytes) return;
    this.forgetOne(ref.id);
    this.entries.set(ref.id, { ref, bytes });
    this.bytes += bytes;
    while (this.bytes > this.maxBytes) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.forgetOne(oldest);
    }
  }

  private forgetOne(id: string): void {
    this.bytes -= this.entries.get(id)?.bytes ?? 0;
    this.entries.delete(id);
  }
}
