/**
 * Resume (docs/protocol.md §8): what a session keeps so that a client whose socket dropped can pick it up on a new
 * socket — a secret token, and the tail of what was sent, indexed by binary answer:
 *
 *   answers  … 41   42  [text] 43   44  [text] 45        (oldest dropped first, RESUME_BUFFER_BYTES)
 *                ▲ oldest kept             ▲ last_answer = 44 ⇒ replay [text] 45 …
 *
 * The client says which answer it saw last; everything sent after that one is sent again, in order.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';

/** 144 random bits, URL-safe. */
export function newResumeToken(): string {
  return randomBytes(18).toString('base64url');
}

/** Compares a presented token with the session's in constant time. */
export function tokenMatches(expected: string, presented: string): boolean {
  const a = Buffer.from(expected);
  const b = Buffer.from(presented);
  return a.length === b.length && timingSafeEqual(a, b);
}

interface Entry {
  /** Index of this binary answer, or undefined for a text message. */
  answer: number | undefined;
  data: Uint8Array | string;
  bytes: number;
}

/** The tail of a session's outgoing messages, bounded in bytes. */
export class ReplayLog {
  private entries: Entry[] = [];
  private head = 0;
  private bytes = 0;
  /** Binary answers logged so far: the index of the next one. */
  private answers = 0;
  /** The oldest binary answer still held (or `answers` when none is). */
  private oldest = 0;

  constructor(private readonly maxBytes: number) {}

  /** Binary answers sent so far. */
  get answerCount(): number {
    return this.answers;
  }

  append(data: Uint8Array | string, isBinary: boolean): void {
    const bytes = typeof data === 'string' ? data.length * 2 : data.byteLength;
    this.entries.push({ answer: isBinary ? this.answers++ : undefined, data, bytes });
    this.bytes += bytes;
    while (this.bytes > this.maxBytes && this.head < this.entries.length) {
      const dropped = this.entries[this.head++] as Entry;
      this.bytes -= dropped.bytes;
      if (dropped.answer !== undefined) this.oldest = dropped.answer + 1;
    }
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
    if (this.head === this.entries.length) this.oldest = this.answers;
  }

  /**
   * Everything sent after binary answer `last` (-1: from the first), or undefined when it can no longer
   * be replayed (dropped from the log) or names an answer never sent.
   */
  after(last: number): { data: Uint8Array | string; isBinary: boolean }[] | undefined {
    if (!Number.isInteger(last) || last < -1 || last >= this.answers) return undefined;
    if (last + 1 < this.oldest) return undefined;
    const out: { data: Uint8Array | string; isBinary: boolean }[] = [];
    let seen = false;
    for (let i = this.head; i < this.entries.length; i++) {
      const e = this.entries[i] as Entry;
      if (!seen) {
        // Start right after answer `last`; with last = -1 (or `last` itself dropped), at answer last + 1.
        if (e.answer === last) {
          seen = true;
          continue;
        }
        if (e.answer === undefined || e.answer <= last) continue;
        seen = true;
      }
      out.push({ data: e.data, isBinary: e.answer !== undefined });
    }
    return out;
  }
}
