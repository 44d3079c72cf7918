/**
 * quantum-vpn: the command-line program. `run(argv)` dispatches to one module per command and
 * resolves with the exit code; run directly (`node --import tsx lib/cli/main.ts ...`) or through
 * bin/quantum-vpn.js (which loads the bundled dist/cli.js), it sets process.exitCode.
 */
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { CliError, type FlagSpec, formatFlags, parseArgs, type ParsedArgs, UsageError } from './args.js';
import { benchCommand } from './bench.js';
import { type Command, err, out } from './common.js';
import { demoCommand } from './demo.js';
import { exampleCommand } from './example.js';
import { fipsCommand, fipsFromEnvironment } from './fips.js';
import { forwardCommand } from './forward.js';
import { certCommand } from './cert.js';
import { checkConfigCommand } from './checkConfig.js';
import { fingerprintCommand, keygenCommand, keyscanCommand } from './identity.js';
import { pskCommand } from './psk.js';
import { serveCommand } from './serve.js';
import { versionCommand } from './version.js';

const helpCommand: Command = {
  name: 'help',
  summary: "Show this help, or a command's help: quantum-vpn help <command>",
  synopsis: 'quantum-vpn help [command]',
  description: 'Prints the list of commands, or the options of one command.',
  flags: [],
  maxPositionals: 1,
  async run(args: ParsedArgs): Promise<number> {
    const name = args.positionals[0];
    if (name === undefined) {
      out(generalUsage());
      return 0;
    }
    const cmd = findCommand(name);
    if (!cmd) {
      err(`Unknown command: ${name}`);
      err(generalUsage());
      return 1;
    }
    out(commandUsage(cmd));
    return 0;
  },
};

export const COMMANDS: readonly Command[] = [
  demoCommand,
  benchCommand,
  forwardCommand,
  serveCommand,
  checkConfigCommand,
  keygenCommand,
  fingerprintCommand,
  keyscanCommand,
  certCommand,
  pskCommand,
  exampleCommand,
  versionCommand,
  fipsCommand,
  helpCommand,
];

function findCommand(name: string): Command | undefined {
  return COMMANDS.find((c) => c.name === name);
}

/** The top-level usage text. */
export function generalUsage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length)) + 3;
  return [
    'quantum-vpn: post-quantum secure tunnel (X25519 + ML-KEM-1024 hybrid key exchange over OpenSSL 3.5)',
    '',
    'Usage: quantum-vpn <command> [options]',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}${c.summary}`),
    '',
    "Run 'quantum-vpn <command> --help' for the options of a command.",
    'Flags may be written -flag or --flag, with the value as --flag value or --flag=value.',
  ].join('\n');
}

/** The usage text of one command. */
export function commandUsage(cmd: Command): string {
  const help: FlagSpec = { name: 'help', kind: 'boolean', help: 'Show this help (also -h)' };
  return [`Usage: ${cmd.synopsis}`, '', cmd.description, '', 'Options:', formatFlags([...cmd.flags, help])].join('\n');
}

/** Runs quantum-vpn with `argv` (the arguments after the program name); resolves with the exit code. */
export async function run(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) {
    err(generalUsage());
    return 1;
  }
  if (name === '-h' || name === '--help' || name === '-help') return helpCommand.run({ flags: {}, given: new Set(), positionals: [], help: false });
  if (name === '--version' || name === '-version') {
    fipsFromEnvironment(); // report the mode this process really runs in, as `version` does
    return versionCommand.run({ flags: { json: false }, given: new Set(), positionals: [], help: false });
  }
  const cmd = findCommand(name);
  if (!cmd) {
    err(`Unknown command: ${name}`);
    err('');
    err(generalUsage());
    return 1;
  }
  try {
    const args = parseArgs(cmd.flags, rest, cmd.maxPositionals ?? 0);
    if (args.help) {
      out(commandUsage(cmd));
      return 0;
    }
    if (!cmd.managesFips) fipsFromEnvironment();
    return await cmd.run(args);
  } catch (e) {
    if (e instanceof UsageError) {
      err(`quantum-vpn ${cmd.name}: ${e.message}`);
      err('');
      err(commandUsage(cmd));
      return 1;
    }
    if (e instanceof CliError) {
      err(`quantum-vpn: ${e.message}`);
      return 1;
    }
    err(`quantum-vpn: unexpected error: ${(e as Error)?.stack ?? String(e)}`);
    return 1;
  }
}

/**
 * A reader that went away (`quantum-vpn version | head -1`) makes the next write fail with EPIPE.
 * Like `yes | head`, that is the end of the program, not an error: exit 0 at once, quietly.
 * Any other failure to write the output is reported in one line, with exit code 1.
 */
function exitQuietlyWhenTheReaderLeaves(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE' || e.code === 'ERR_STREAM_DESTROYED') process.exit(0);
      const name = stream === process.stdout ? 'stdout' : 'stderr';
      if (stream !== process.stderr) process.stderr.write(`quantum-vpn: cannot write to ${name}: ${e.code ?? e.message}\n`);
      process.exit(1);
    });
  }
}

/** Runs `run(process.argv)` and sets the exit code; used by the launcher and when run directly. */
export function main(): void {
  exitQuietlyWhenTheReaderLeaves();
  run(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
      // Everything is closed by now; if some handle still holds the loop (a TTY stdin, a slow
      // exporter), do not hang: leave after a grace period that lets output flush.
      setTimeout(() => process.exit(), 3000).unref();
    },
    (e) => {
      process.stderr.write(`quantum-vpn: ${(e as Error)?.stack ?? String(e)}\n`);
      process.exitCode = 1;
    },
  );
}

function isEntryPoint(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(entry)).href;
  } catch {
    return false;
  }
}

if (isEntryPoint()) main();
