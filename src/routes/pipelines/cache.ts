/**
 * Serialized `GET /v1/pipelines/{id}` bodies per (id, version). A stored version never changes (a PUT
 * makes a new version, docs/rest.md), so an entry never goes stale: a request still asks the store which
 * version is current (or whether the pipeline was deleted), and only planning and serializing the
 * body are saved. Bounded: the oldest entry goes first.
 */
export class BodyCache {
  private readonly bodies = new Map<string, string>();

  constructor(private readonly maxEntries = 1024) {}

  get(id: string, version: number): string | undefined {
    return this.bodies.get(`${id}\n${version}`);
  }

  set(id: string, version: number, body: string): void {
    if (this.bodies.size >= this.maxEntries) {
      const oldest = this.bodies.keys().next().value;
      if (oldest !== undefined) this.bodies.delete(oldest);
    }
    this.bodies.set(`${id}\n${version}`, body);
  }

  /** Frees a deleted pipeline's entries. */
  forget(id: string): void {
    for (const key of this.bodies.keys()) if (key.startsWith(`${id}\n`)) this.bodies.delete(key);
  }

  get size(): number {
    return this.bodies.size;
  }
}
