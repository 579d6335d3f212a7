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

/** Bytes of one arena that binary answers are copied into; a larger answer gets an arena of its own. */
const ARENA_BYTES = 64 * 1024;

/**
 * Arenas of logs that were closed, kept for the logs of sessions that start later, up to this many
 * (256 MiB). Without them every log allocated its arenas afresh while those of ended sessions waited
 * for the garbage collector: 500 sessions ending while 500 others started (a reconnect wave, a load
 * generator's next run) moved ~130 MB of external memory through V8 at once, and it answered with
 * five full collections in 200 ms, 4–10 ms each, on the thread that carries every frame.
 */
export const POOLED_ARENAS_MAX = 4096;
const pooledArenas: Uint8Array[] = [];

/** Arenas waiting in the process-wide pool (tests). */
export function pooledArenaCount(): number {
  return pooledArenas.length;
}

/**
 * An arena from the pool, or a new one, not zeroed: only bytes an answer was copied into are ever read
 * back (`bytesOf`), and zeroing 64 KiB per arena was most of a session's start-up on the JS thread.
 */
const takeArena = (): Uint8Array => pooledArenas.pop() ?? Buffer.allocUnsafeSlow(ARENA_BYTES);
/**
 * Arenas a log allocates when it is created, to hold its whole bound (up to this many; a larger bound
 * allocates the rest as it fills). Allocating them on the frame path instead stalled every session:
 * 1,000 sessions starting to stream at once allocated ~300 MB of arenas in their first second, and the
 * JS thread fell ~100 ms behind. Emptied arenas are kept for reuse up to the same count.
 */
const PREALLOCATED_ARENAS = 16;

/**
 * The tail of a session's outgoing messages, bounded in bytes and in entries (empty answers weigh
 * nothing but still count). Binary answers are COPIED into arenas the log reuses: the caller's bytes
 * are only borrowed (an engine answer is a view into a buffer the next batch overwrites), and the log
 * allocates nothing per answer once warm. Entries live in typed arrays used as a ring, oldest at `head`.
 */
export class ReplayLog {
  private readonly maxEntries: number;
  /** Entries the ring holds before it doubles; see the constructor. */
  private capacity: number;
  /** Per entry: binary answer index, or -1 for text. */
  private answerOf: Float64Array;
  /** Per binary entry: arena number, offset and length in it. */
  private arenaOf: Int32Array;
  private offsetOf: Int32Array;
  private lengthOf: Int32Array;
  private textOf: (string | undefined)[];
  private head = 0;
  private count = 0;
  private bytes = 0;
  /** Arenas by number (undefined once released), their live entry counts, and reusable ones. */
  private arenas: (Uint8Array | undefined)[] = [];
  private freeIds: number[] = [];
  private live: number[] = [];
  private spare: Uint8Array[] = [];
  /** Emptied arenas kept for reuse, at most (the count allocated up front). */
  private readonly spareMax: number;
  /** The arena being filled, and where. */
  private current = -1;
  private at = 0;
  /** Binary answers logged so far: the index of the next one. */
  private answers = 0;
  /** The oldest binary answer still held (or `answers` when none is). */
  private oldest = 0;
  /** After `close`, appends are ignored and nothing can be replayed. */
  private closed = false;

  constructor(private readonly maxBytes: number) {
    this.maxEntries = Math.max(1024, Math.floor(maxBytes / 64));
    // Room for the bound's worth of answers of 512 bytes or more (20 ms of 16 kHz mono is 640), so that
    // the ring seldom doubles on the frame path: sessions started together double together, and 500 of
    // them doing so at once held the JS thread for milliseconds, three times in their first seconds.
    this.capacity = Math.min(this.maxEntries, 1024, 2 ** Math.ceil(Math.log2(Math.max(64, maxBytes / 512))));
    this.answerOf = new Float64Array(this.capacity);
    this.arenaOf = new Int32Array(this.capacity);
    this.offsetOf = new Int32Array(this.capacity);
    this.lengthOf = new Int32Array(this.capacity);
    this.textOf = new Array(this.capacity);
    // The bound's worth of arenas, plus the one being filled while the oldest still has live entries.
    this.spareMax = Math.min(PREALLOCATED_ARENAS, Math.ceil(maxBytes / ARENA_BYTES) + 1);
    for (let i = 0; i < this.spareMax; i++) this.spare.push(takeArena());
  }

  /** Binary answers sent so far. */
  get answerCount(): number {
    return this.answers;
  }

  /**
   * Ends the log: its arenas go back to the process-wide pool (up to POOLED_ARENAS_MAX) for the next
   * session's log, and it holds nothing after this. Nothing outside the log holds an arena (`after`
   * answers copies), so no one reads what a later log writes there. Idempotent.
   */
  close(): void {
    const give = (bytes: Uint8Array | undefined) => {
      if (bytes?.length === ARENA_BYTES && pooledArenas.length < POOLED_ARENAS_MAX) pooledArenas.push(bytes);
    };
    this.arenas.forEach(give);
    this.spare.forEach(give);
    this.arenas = [];
    this.spare = [];
    this.live = [];
    this.freeIds = [];
    this.textOf = [];
    this.current = -1;
    this.at = 0;
    this.head = 0;
    this.count = 0;
    this.bytes = 0;
    this.oldest = this.answers;
    this.closed = true;
  }

  /** Logs a text message (a string) or a binary answer (bytes, copied). */
  append(data: Uint8Array | string): void {
    if (this.closed) return;
    if (this.count === this.capacity) this.grow();
    const slot = (this.head + this.count) % this.capacity;
    this.count += 1;
    if (typeof data === 'string') {
      this.answerOf[slot] = -1;
      this.textOf[slot] = data;
      this.lengthOf[slot] = data.length * 2;
    } else {
      this.answerOf[slot] = this.answers++;
      this.copyIn(slot, data);
    }
    this.bytes += this.lengthOf[slot] as number;
    while ((this.bytes > this.maxBytes || this.count > this.maxEntries) && this.count > 0) this.dropOldest();
    if (this.count === 0) this.oldest = this.answers;
  }

  /**
   * Everything sent after binary answer `last` (-1: from the first), or undefined when it can no longer
   * be replayed (dropped from the log) or names an answer never sent. Binary messages are fresh copies.
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
      out.push(
        text !== undefined
          ? { data: text, isBinary: false }
          : { data: this.bytesOf(slot).slice(), isBinary: true },
      );
    }
    return out;
  }

  private copyIn(slot: number, data: Uint8Array): void {
    const n = data.byteLength;
    this.lengthOf[slot] = n;
    if (n > ARENA_BYTES) {
      const own = this.addArena(new Uint8Array(n));
      (this.arenas[own] as Uint8Array).set(data);
      this.arenaOf[slot] = own;
      this.offsetOf[slot] = 0;
      this.live[own] = 1;
      return;
    }
    if (this.current !== -1 && this.live[this.current] === 0) this.at = 0;
    if (this.current === -1 || this.at + n > ARENA_BYTES) {
      const previous = this.current;
      this.current = this.addArena(this.spare.pop() ?? takeArena());
      this.at = 0;
      if (previous !== -1 && this.live[previous] === 0) this.release(previous);
    }
    (this.arenas[this.current] as Uint8Array).set(data, this.at);
    this.arenaOf[slot] = this.current;
    this.offsetOf[slot] = this.at;
    this.at += n;
    this.live[this.current] = (this.live[this.current] as number) + 1;
  }

  private bytesOf(slot: number): Uint8Array {
    const at = this.offsetOf[slot] as number;
    return (this.arenas[this.arenaOf[slot] as number] as Uint8Array).subarray(
      at,
      at + (this.lengthOf[slot] as number),
    );
  }

  private dropOldest(): void {
    const slot = this.head;
    this.bytes -= this.lengthOf[slot] as number;
    if (this.textOf[slot] !== undefined) this.textOf[slot] = undefined;
    else {
      this.oldest = (this.answerOf[slot] as number) + 1;
      const arena = this.arenaOf[slot] as number;
      this.live[arena] = (this.live[arena] as number) - 1;
      if (this.live[arena] === 0 && arena !== this.current) this.release(arena);
    }
    this.head = (this.head + 1) % this.capacity;
    this.count -= 1;
  }

  private addArena(bytes: Uint8Array): number {
    const id = this.freeIds.pop() ?? this.arenas.length;
    this.arenas[id] = bytes;
    this.live[id] = 0;
    return id;
  }

  private release(arena: number): void {
    const bytes = this.arenas[arena] as Uint8Array;
    this.arenas[arena] = undefined;
    this.freeIds.push(arena);
    if (bytes.length === ARENA_BYTES && this.spare.length < this.spareMax) this.spare.push(bytes);
  }

  /** Doubles the entry ring, oldest entry first at 0. */
  private grow(): void {
    const order = Array.from({ length: this.count }, (_, i) => (this.head + i) % this.capacity);
    const capacity = this.capacity * 2;
    const answerOf = new Float64Array(capacity);
    const arenaOf = new Int32Array(capacity);
    const offsetOf = new Int32Array(capacity);
    const lengthOf = new Int32Array(capacity);
    const textOf: (string | undefined)[] = new Array(capacity);
    order.forEach((from, to) => {
      answerOf[to] = this.answerOf[from] as number;
      arenaOf[to] = this.arenaOf[from] as number;
      offsetOf[to] = this.offsetOf[from] as number;
      lengthOf[to] = this.lengthOf[from] as number;
      textOf[to] = this.textOf[from];
    });
    this.capacity = capacity;
    this.answerOf = answerOf;
    this.arenaOf = arenaOf;
    this.offsetOf = offsetOf;
    this.lengthOf = lengthOf;
    this.textOf = textOf;
    this.head = 0;
  }
}
