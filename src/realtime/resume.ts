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

/** Reads a kept answer back from the engine (`EngineSession.readAnswer`): undefined once written over. */
export type AnswerReader = (at: number, length: number) => Uint8Array | undefined;

/**
 * The tail of a session's outgoing messages, bounded in bytes and in entries (empty answers weigh
 * nothing but still count). Text messages are held here. Binary answers stay where the engine made
 * them (it keeps each session's latest answers, native/dsp/src/replay.rs): the log holds only where each
 * starts there and its length, so the thread that carries every socket never copies an answer for a
 * resume that may never come. Entries live in typed arrays used as a ring, oldest at `head`.
 */
export class ReplayLog {
  private readonly maxEntries: number;
  /** Entries the ring holds before it doubles; see the constructor. */
  private capacity: number;
  /** Per entry: binary answer index, or -1 for text. */
  private answerOf: Float64Array;
  /** Per binary entry: where the engine keeps it (the output's tag), and its length. */
  private atOf: Uint32Array;
  private lengthOf: Int32Array;
  private textOf: (string | undefined)[];
  private head = 0;
  private count = 0;
  private bytes = 0;
  /** Binary answers logged so far: the index of the next one. */
  private answers = 0;
  /** The oldest binary answer still held (or `answers` when none is). */
  private oldest = 0;
  /** After `close`, appends are ignored and nothing can be replayed. */
  private closed = false;

  /**
   * @param maxBytes the bound (RESUME_BUFFER_BYTES); the engine must keep at least this many bytes of answers
   * @param read reads a binary answer back from the engine
   */
  constructor(
    private readonly maxBytes: number,
    private readonly read: AnswerReader,
  ) {
    this.maxEntries = Math.max(1024, Math.floor(maxBytes / 64));
    // Room for the bound's worth of answers of 512 bytes or more (20 ms of 16 kHz mono is 640), so that
    // the ring seldom doubles on the frame path: sessions started together double together, and 500 of
    // them doing so at once held the JS thread for milliseconds, three times in their first seconds.
    this.capacity = Math.min(this.maxEntries, 1024, 2 ** Math.ceil(Math.log2(Math.max(64, maxBytes / 512))));
    this.answerOf = new Float64Array(this.capacity);
    this.atOf = new Uint32Array(this.capacity);
    this.lengthOf = new Int32Array(this.capacity);
    this.textOf = new Array(this.capacity);
  }

  /** Binary answers sent so far. */
  get answerCount(): number {
    return this.answers;
  }

  /** Ends the log: it holds nothing after this. Idempotent. */
  close(): void {
    this.textOf = [];
    this.head = 0;
    this.count = 0;
    this.bytes = 0;
    this.oldest = this.answers;
    this.closed = true;
  }

  /** Logs a text message. */
  appendText(text: string): void {
    const slot = this.add();
    if (slot === -1) return;
    this.answerOf[slot] = -1;
    this.textOf[slot] = text;
    this.lengthOf[slot] = text.length * 2;
    this.settle(slot);
  }

  /** Logs a binary answer the engine keeps at `at` (its output's tag), `length` bytes long. */
  appendAnswer(at: number, length: number): void {
    const slot = this.add();
    if (slot === -1) return;
    this.answerOf[slot] = this.answers++;
    this.atOf[slot] = at;
    this.lengthOf[slot] = length;
    this.settle(slot);
  }

  /**
   * Everything sent after binary answer `last` (-1: from the first), or undefined when it can no longer
   * be replayed (dropped from the log, or written over in the engine) or names an answer never sent.
   * Binary messages are fresh copies.
   */
  after(last: number): { data: Uint8Array | string; isBinary: boolean }[] | undefined {
    if (this.closed || !Number.isInteger(last) || last < -1 || last >= this.answers) return undefined;
    if (last + 1 < this.oldest) return undefined;
    const out: { data: Uint8Array | string; isBinary: boolean }[] = [];
    let seen = false;
    for (let i = 0; i < this.count; i++) {
      const slot = (this.head + i) % this.capacity;
      const text = this.textOf[slot];
      const answer = this.answerOf[slot] as number;
      if (!seen) {
        // Start right after answer `last`; with last = -1 (or `last` itself dropped), at answer last + 1.
        if (text === undefined && answer === last) {
          seen = true;
          continue;
        }
        if (text !== undefined || answer <= last) continue;
        seen = true;
      }
      if (text !== undefined) {
        out.push({ data: text, isBinary: false });
        continue;
      }
      const length = this.lengthOf[slot] as number;
      const bytes = length === 0 ? new Uint8Array(0) : this.read(this.atOf[slot] as number, length);
      if (bytes === undefined) return undefined;
      out.push({ data: bytes, isBinary: true });
    }
    return out;
  }

  /** The slot of a new entry (-1 once closed). */
  private add(): number {
    if (this.closed) return -1;
    if (this.count === this.capacity) this.grow();
    const slot = (this.head + this.count) % this.capacity;
    this.count += 1;
    return slot;
  }

  /** Counts the new entry's bytes and drops the oldest entries beyond the bounds. */
  private settle(slot: number): void {
    this.bytes += this.lengthOf[slot] as number;
    while ((this.bytes > this.maxBytes || this.count > this.maxEntries) && this.count > 0) this.dropOldest();
    if (this.count === 0) this.oldest = this.answers;
  }

  private dropOldest(): void {
    const slot = this.head;
    this.bytes -= this.lengthOf[slot] as number;
    if (this.textOf[slot] !== undefined) this.textOf[slot] = undefined;
    else this.oldest = (this.answerOf[slot] as number) + 1;
    this.head = (this.head + 1) % this.capacity;
    this.count -= 1;
  }

  /** Doubles the entry ring, oldest entry first at 0. */
  private grow(): void {
    const order = Array.from({ length: this.count }, (_, i) => (this.head + i) % this.capacity);
    const capacity = this.capacity * 2;
    const answerOf = new Float64Array(capacity);
    const atOf = new Uint32Array(capacity);
    const lengthOf = new Int32Array(capacity);
    const textOf: (string | undefined)[] = new Array(capacity);
    order.forEach((from, to) => {
      answerOf[to] = this.answerOf[from] as number;
      atOf[to] = this.atOf[from] as number;
      lengthOf[to] = this.lengthOf[from] as number;
      textOf[to] = this.textOf[from];
    });
    this.capacity = capacity;
    this.answerOf = answerOf;
    this.atOf = atOf;
    this.lengthOf = lengthOf;
    this.textOf = textOf;
    this.head = 0;
  }
}
