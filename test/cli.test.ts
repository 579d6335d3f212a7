/**
 * The `remotemedia process` / `validate` commands and the example pipelines of `examples/`, run as a user
 * would: the built CLI on real recordings.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { settingNames } from '../src/config.js';
import { parseWav } from '../src/native.js';
import { fixtureAudioDir } from './support/audio.js';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'rm-cli-'));

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['dist/cli.js', ...args]);
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** Processes a test recording with an example; returns the output WAV's facts, samples and events. */
async function processExample(example: string, recording: string) {
  const out = join(dir, `${example}.wav`);
  const events = join(dir, `${example}.json`);
  const r = await cli(
    'process',
    '-p',
    `examples/${example}.yaml`,
    fixtureAudioDir + recording,
    out,
    '--events',
    events,
  );
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  const wav = readFileSync(out);
  const info = parseWav(wav);
  const samples = new Int16Array(wav.buffer, wav.byteOffset + info.data_offset, info.data_bytes / 2);
  return {
    info,
    samples,
    events: JSON.parse(readFileSync(events, 'utf8')) as Array<Record<string, unknown>>,
  };
}

const peakDbfs = (s: Int16Array) => 20 * Math.log10(s.reduce((m, x) => Math.max(m, Math.abs(x)), 0) / 32768);

describe('examples', () => {
  it('telephony-ulaw-8k decodes the DTMF recording as 1, 5, 9', async () => {
    const { info, events } = await processExample('telephony-ulaw-8k', 'dtmf-8k-159.wav');
    expect(info).toMatchObject({ sample_rate: 8000, channels: 1 });
    const digits = events.filter((e) => e.name === 'digit').map((e) => (e.data as { digit: string }).digit);
    expect(digits).toEqual(['1', '5', '9']);
  });

  it('asr-frontend turns 48 kHz speech into 16 kHz mono with speech events', async () => {
    const { info, events } = await processExample('asr-frontend', 'speech-48k-mono.wav');
    expect(info).toMatchObject({ sample_rate: 16000, channels: 1 });
    expect(events.map((e) => e.name)).toEqual(expect.arrayContaining(['speech_start', 'speech_end']));
  });

  it('music-loudness keeps stereo and never exceeds its ceiling', async () => {
    const { info, samples, events } = await processExample('music-loudness', 'tones-48k-stereo.wav');
    expect(info).toMatchObject({ sample_rate: 48000, channels: 2 });
    expect(peakDbfs(samples)).toBeLessThanOrEqual(-1 + 0.01);
    expect(events.every((e) => e.name === 'level')).toBe(true);
  });

  it('analysis-only returns the audio untouched and reports meters and detectors', async () => {
    const { samples, events } = await processExample('analysis-only', 'speech-48k-mono.wav');
    const original = readFileSync(`${fixtureAudioDir}speech-48k-mono.wav`);
    const info = parseWav(original);
    expect(Buffer.from(samples.buffer, samples.byteOffset, samples.byteLength)).toEqual(
      original.subarray(info.data_offset, info.data_offset + info.data_bytes),
    );
    const names = new Set(events.map((e) => e.name));
    expect([...names].sort()).toEqual(['level', 'spectrum', 'speech_end', 'speech_start']);
  });
});

describe('remotemedia validate', () => {
  it('prints the plan of a valid document, fused as the seed promises', async () => {
    const r = await cli('validate', 'examples/asr-frontend.yaml');
    expect(r.code).toBe(0);
    const plan = JSON.parse(r.stdout);
    expect(plan.nodes[0]).toMatchObject({ type: 'fused', fused: ['mono', 'resample', 'highpass', 'norm'] });
    expect(plan.latency_ms).toBeGreaterThan(0);
  });

  it('lists every problem with its pointer and code, exit 1', async () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(
      bad,
      'name: bad\nnodes:\n  - id: a\n    type: gain\n    params: { db: 99 }\n  - id: a\n    type: reverb\n',
    );
    const r = await cli('validate', bad);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/\/nodes\/0\/params\/db\s+RM_PIPE_BAD_PARAMS/);
    expect(r.stderr).toMatch(/RM_PIPE_DUPLICATE_ID/);
    expect(r.stderr).toMatch(/RM_PIPE_UNKNOWN_TYPE/);
  });

  it('checks the input format too', async () => {
    const r = await cli(
      'validate',
      'examples/analysis-only.yaml',
      '--sample-rate',
      '44100',
      '--channels',
      '1',
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/RM_PIPE_FORMAT_CONFLICT/);
  });
});

describe('remotemedia serve --help', () => {
  it('lists every setting in aligned columns: flag, environment variable, meaning', async () => {
    const r = await cli('serve', '--help');
    expect(r.code).toBe(0);
    const rows = r.stdout.split('\n').filter((line) => line.startsWith('  --'));
    expect(rows.map((row) => row.split(/\s+/)[2])).toEqual([...settingNames]);
    // Where the variable and the meaning start, on every row.
    const columns = rows.map((row) => {
      const m = /^( {2}\S+\s+)(\S+\s+)/.exec(row);
      return `${m?.[1]?.length} ${(m?.[1]?.length ?? 0) + (m?.[2]?.length ?? 0)}`;
    });
    expect(new Set(columns).size).toBe(1);
  });
});

describe('remotemedia process', () => {
  it('has help, and refuses a WAV it cannot read with a stable code', async () => {
    expect((await cli('process', '--help')).stdout).toMatch(/--pipeline/);
    expect((await cli('validate', '--help')).stdout).toMatch(/--sample-rate/);
    const notWav = join(dir, 'x.wav');
    writeFileSync(notWav, 'hello');
    const r = await cli('process', '-p', 'examples/asr-frontend.yaml', notWav, join(dir, 'y.wav'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/RM_ERR_BAD_WAV/);
    const empty = join(dir, 'empty.wav');
    writeFileSync(empty, '');
    const e = await cli('process', '-p', 'examples/asr-frontend.yaml', empty, join(dir, 'y.wav'));
    expect(e.code).toBe(1);
    expect(e.stderr).toMatch(/RM_ERR_EMPTY_AUDIO/);
  });

  it('writes float output on request', async () => {
    const out = join(dir, 'f.wav');
    const r = await cli(
      'process',
      '-p',
      'examples/asr-frontend.yaml',
      `${fixtureAudioDir}speech-48k-mono.wav`,
      out,
      '--encoding',
      'f32le',
    );
    expect(r.code).toBe(0);
    expect(parseWav(readFileSync(out))).toMatchObject({ encoding: 'f32le', sample_rate: 16000 });
  });
});

describe('examples/stream-wav.mjs', () => {
  /** Runs the example; a hang fails the test (the child is killed after 30 s). */
  async function streamWav(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    try {
      const { stdout, stderr } = await run(process.execPath, ['examples/stream-wav.mjs', ...args], {
        timeout: 30_000,
      });
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code: number; killed: boolean; stdout: string; stderr: string };
      expect(e.killed, 'stream-wav.mjs hung').toBe(false);
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  }

  it('prints its usage with --help and on bad arguments', async () => {
    const help = await streamWav('--help');
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/usage: node examples\/stream-wav\.mjs <ws-url> <in\.wav> <out\.wav>/);
    const bad = await streamWav('--no-such-flag');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/usage:/);
  });

  it("shows the server's answer when the upgrade is refused, and exits when start is refused", async () => {
    const { startTestServer, storePipeline } = await import('./support/server.js');
    const server = await startTestServer();
    try {
      const input = `${fixtureAudioDir}speech-16k-mono.wav`;
      const out = join(dir, 'refused.wav');
      const missing = await streamWav(
        `${server.base.uws}/v1/pipelines/pl_aaaaaaaaaaaaaaaa/stream`,
        input,
        out,
      );
      expect(missing.code).toBe(1);
      expect(missing.stderr).toMatch(/HTTP 404 .*RM_ERR_PIPELINE_NOT_FOUND/);
      // denoise needs 48 kHz: the server answers `start` with an error and the example must not wait forever.
      const id = await storePipeline(server.app, { name: 'dn', nodes: [{ id: 'd', type: 'denoise' }] });
      for (const base of [server.base.ws, server.base.uws]) {
        const refused = await streamWav(`${base}/v1/pipelines/${id}/stream`, input, out);
        expect(refused.code).toBe(1);
        expect(refused.stderr).toMatch(/RM_ERR_FORMAT_CONFLICT/);
      }
    } finally {
      await server.close();
    }
  });

  it('streams a recording through a running server and writes what /process would', async () => {
    const { startTestServer, storePipeline, asrFrontEnd } = await import('./support/server.js');
    const server = await startTestServer({ SESSION_QUEUE_MS: '60000' });
    try {
      const id = await storePipeline(server.app, asrFrontEnd);
      const out = join(dir, 'streamed.wav');
      const input = `${fixtureAudioDir}speech-48k-mono.wav`;
      const { stdout } = await run(process.execPath, [
        'examples/stream-wav.mjs',
        `${server.base.uws}/v1/pipelines/${id}/stream`,
        input,
        out,
        '--fast',
      ]);
      expect(stdout).toMatch(/ready: 48000 Hz × 1 → 16000 Hz × 1/);
      expect(stdout).toMatch(/event vad\.speech_start/);
      const processed = await server.app.inject({
        method: 'POST',
        url: `/v1/pipelines/${id}/process`,
        headers: { 'content-type': 'audio/wav' },
        payload: readFileSync(input),
      });
      expect(readFileSync(out).subarray(44).equals(processed.rawPayload.subarray(44))).toBe(true);
    } finally {
      await server.close();
    }
  });
});
