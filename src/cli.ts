#!/usr/bin/env node
/**
 * The `remotemedia` command.
 */
import { flagName, loadConfig, settingHelp, settingNames } from './config.js';
import { RemoteMediaError } from './errors.js';
import { closeOnSignals, startServer } from './server.js';

const usage = `remotemedia — real-time audio processing server

Usage:
  remotemedia serve [options]    run the HTTP + WebSocket server
  remotemedia --help             this text

Every option can also be given as an environment variable:
${settingNames.map((name) => `  ${flagName(name).padEnd(22)} ${name.padEnd(18)} ${settingHelp[name]}`).join('\n')}
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(usage);
    return command === undefined ? 2 : 0;
  }
  if (command === 'serve') {
    if (rest.includes('--help') || rest.includes('-h')) {
      process.stdout.write(usage);
      return 0;
    }
    const config = loadConfig(process.env, rest);
    const server = await startServer(config);
    closeOnSignals(server, config);
    return -1; // keep running
  }
  process.stderr.write(`remotemedia: unknown command '${command}'\n\n${usage}`);
  return 2;
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
