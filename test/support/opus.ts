/**
 * An Opus codec independent of the server's: Debian's system libopus (package libopus0, which .ci/run installs),
 * driven by `opus-reference.py` through ctypes. The server builds its own libopus from source; these tests hold
 * its packets up against another build and version of the reference implementation.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const script = fileURLToPath(new URL('./opus-reference.py', import.meta.url));

function run(args: string[], input?: Buffer): { status: number | null; stdout: Buffer; stderr: string } {
  const r = spawnSync('python3', [script, ...args], { input, maxBuffer: 256 * 1024 * 1024 });
  return { status: r.status, stdout: r.stdout ?? Buffer.alloc(0), stderr: String(r.stderr ?? r.error ?? '') };
}

/** The system libopus' version string, or why it cannot be used. */
export function referenceOpus(): { version: string } | { missing: string } {
  const r = run(['version']);
  if (r.status === 0) return { version: r.stdout.toString().trim() };
  return { missing: `python3 ${script} version exited ${r.status}: ${r.stderr.trim()}` };
}

/** Packets as records: a 2-byte little-endian length, then the packet (length 0 = a lost packet). */
function toRecords(packets: Buffer[]): Buffer {
  return Buffer.concat(
    packets.flatMap((p) => {
      const length = Buffer.alloc(2);
      length.writeUInt16LE(p.length);
      return [length, p];
    }),
  );
}

function fromRecords(records: Buffer): Buffer[] {
  const packets: Buffer[] = [];
  for (let at = 0; at < records.length; ) {
    const length = records.readUInt16LE(at);
    packets.push(records.subarray(at + 2, at + 2 + length));
    at += 2 + length;
  }
  return packets;
}

function checked(args: string[], input: Buffer): Buffer {
  const r = run(args, input);
  if (r.status !== 0)
    throw new Error(`opus-reference.py ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

/** Interleaved s16le PCM to 20 ms packets, with the system libopus (the last partial frame padded with silence). */
export function referenceEncode(pcm: Buffer, sampleRate: number, channels: number): Buffer[] {
  return fromRecords(checked(['encode', String(sampleRate), String(channels)], pcm));
}

/** Packets to interleaved s16le PCM, with the system libopus; an empty packet is concealed as lost (20 ms). */
export function referenceDecode(packets: Buffer[], sampleRate: number, channels: number): Buffer {
  return checked(['decode', String(sampleRate), String(channels)], toRecords(packets));
}
