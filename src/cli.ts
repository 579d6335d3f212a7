#!/usr/bin/env node
/**
 * The `remotemedia` command: `serve`, `process`, `validate`.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { extname } from 'node:path';
import { parseArgs } from 'node:util';
import { flagName, loadConfig, settingHelp, settingNames } from './config.js';
import { RemoteMediaError } from './errors.js';
import { Engine, parseWav, wavHeader } from './native.js';
import { planWithEngine } from './planner.js';
import { closeOnSignals, startServer } from './server.js';

const usage = `remotemedia — real-time audio processing server

Usage:
  remotemedia serve [options]                                  run the HTTP + WebSocket server
  remotemedia process --pipeline p.yaml in.wav out.wav [...]   process a WAV file offline
  remotemedia validate p.yaml [--sample-rate N --channels C]   print the plan, or every problem
  remotemedia <command> --help                                 help for one command
`;

/** One line per setting, in three aligned columns: flag, environment variable, meaning. */
function settingLines(): string {
  const flagWidth = Math.max(...settingNames.map((name) => flagName(name).length));
  const nameWidth = Math.max(...settingNames.map((name) => name.length));
  return settingNames
    .map((name) => `  ${flagName(name).padEnd(flagWidth)}  ${name.padEnd(nameWidth)}  ${settingHelp[name]}`)
    .join('\n');
}

const serveUsage = `remotemedia serve [options]

Runs the HTTP control plane, the WebSocket realtime plane and the uWebSockets.js listener.
Every option can also be given as an environment variable (flags win); docs/configuration.md explains each:
${settingLines()}
`;

const processUsage = `remotemedia process --pipeline <file> <in.wav> <out.wav> [options]

Runs a WAV file (16-bit PCM or 32-bit float, any rate and channel count) through a pipeline document
(YAML or JSON) on the native engine — the same executor as streaming — and writes the processed WAV.

Options:
  --pipeline, -p <file>     pipeline document (.yaml, .yml or .json)
  --events <file>           write the events (VAD, DTMF, level, spectrum) as JSON
  --encoding <s16le|f32le>  output sample encoding (default: the input's)
  --workers <n>             native worker threads (default 1)
  --quiet, -q               no progress bar
`;

const validateUsage = `remotemedia validate <file> [--sample-rate N] [--channels C]

Validates a pipeline document and prints its execution plan as JSON (exit 0), or every problem with its
JSON pointer and code (exit 1). The input format defaults to 48000 Hz stereo.
`;

function readDocument(path: string): { document: string; contentType: string } {
  const ext = extname(path).toLowerCase();
  return {
    document: readFileSync(path, 'utf8'),
    contentType: ext === '.json' ? 'application/json' : 'application/yaml',
  };
}

function printProblems(errors: ReadonlyArray<{ path: string; code: string; message: string }>): void {
  for (const e of errors) process.stderr.write(`  ${e.path || '/'}  ${e.code}  ${e.message}\n`);
}

function progressBar(done: number, total: number): string {
  const width = 30;
  const filled = Math.round((done / Math.max(1, total)) * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${Math.floor((done / Math.max(1, total)) * 100)}%`;
}

async function processCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      pipeline: { type: 'string', short: 'p' },
      events: { type: 'string' },
      encoding: { type: 'string' },
      workers: { type: 'string' },
      quiet: { type: 'boolean', short: 'q' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(processUsage);
    return 0;
  }
  const [inPath, outPath] = positionals;
  if (!values.pipeline || !inPath || !outPath || positionals.length !== 2) {
    process.stderr.write(processUsage);
    return 2;
  }
  const encoding = values.encoding ?? undefined;
  if (encoding !== undefined && encoding !== 's16le' && encoding !== 'f32le') {
    throw new RemoteMediaError('RM_ERR_BAD_ENCODING', `--encoding must be s16le or f32le, not ${encoding}`);
  }
  const wav = readFileSync(inPath);
  const info = parseWav(wav);
  const { document, contentType } = readDocument(values.pipeline);
  const planned = planWithEngine(document, {
    contentType,
    inputFormat: { sample_rate: info.sample_rate, channels: info.channels },
  });
  if (!planned.ok) {
    process.stderr.write(`remotemedia: ${values.pipeline} cannot process ${inPath}:\n`);
    printProblems(planned.errors);
    return 1;
  }
  const engine = new Engine({ workers: Number(values.workers ?? 1), pinCores: false });
  const showProgress = !values.quiet && process.stderr.isTTY === true;
  try {
    const outEncoding = encoding ?? info.encoding;
    const result = await engine.processBatch(
      planned.plan,
      { encoding: info.encoding, sample_rate: info.sample_rate, channels: info.channels },
      wav.subarray(info.data_offset, info.data_offset + info.data_bytes),
      outEncoding,
      showProgress ? (done, total) => process.stderr.write(`\r${progressBar(done, total)}`) : undefined,
    );
    if (showProgress) process.stderr.write('\n');
    const header = wavHeader(
      result.format.sample_rate,
      result.format.channels,
      outEncoding,
      result.audio.length,
    );
    writeFileSync(outPath, Buffer.concat([header, result.audio]));
    if (values.events) writeFileSync(values.events, `${JSON.stringify(result.events, null, 2)}\n`);
    process.stdout.write(
      `${outPath}: ${result.format.sample_rate} Hz, ${result.format.channels} ch, ${outEncoding}, ` +
        `${result.events.length} events, latency ${result.latency_ms.toFixed(3)} ms\n`,
    );
    return 0;
  } finally {
    engine.shutdown();
  }
}

function validateCommand(args: string[]): number {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      'sample-rate': { type: 'string' },
      channels: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(validateUsage);
    return 0;
  }
  const [path] = positionals;
  if (!path || positionals.length !== 1) {
    process.stderr.write(validateUsage);
    return 2;
  }
  const { document, contentType } = readDocument(path);
  const planned = planWithEngine(document, {
    contentType,
    inputFormat: {
      sample_rate: Number(values['sample-rate'] ?? 48000),
      channels: Number(values.channels ?? 2),
    },
  });
  if (!planned.ok) {
    process.stderr.write(`${path}: ${planned.errors.length} problem(s)\n`);
    printProblems(planned.errors);
    return 1;
  }
  process.stdout.write(`${JSON.stringify(planned.plan, null, 2)}\n`);
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const wantsHelp = rest.includes('--help') || rest.includes('-h');
  switch (command) {
    case undefined:
      process.stdout.write(usage);
      return 2;
    case '--help':
    case '-h':
    case 'help':
      process.stdout.write(usage);
      return 0;
    case 'serve': {
      if (wantsHelp) {
        process.stdout.write(serveUsage);
        return 0;
      }
      const config = loadConfig(process.env, rest);
      const server = await startServer(config);
      closeOnSignals(server, config);
      return -1; // keep running
    }
    case 'process':
      return processCommand(rest);
    case 'validate':
      return validateCommand(rest);
    default:
      process.stderr.write(`remotemedia: unknown command '${command}'\n\n${usage}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (err: unknown) => {
    const message = err instanceof RemoteMediaError ? `${err.code}: ${err.message}` : String(err);
    process.stderr.write(`remotemedia: ${message}\n`);
    process.exitCode = 1;
  },
);
