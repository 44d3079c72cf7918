/** The CLI's argument parsing, in process: Go-style flags, addresses, sizes and durations. */
import { expect } from 'chai';
import { type FlagSpec, formatHostPort, parseArgs, parseDuration, parseHostPort, parseSize, printable, UsageError } from '../../lib/cli/args.js';

const SPECS: FlagSpec[] = [
  { name: 'addr', kind: 'string', default: 'localhost:8443', help: '' },
  { name: 'message', kind: 'string', default: 'hi', help: '' },
  { name: 'verbose', kind: 'boolean', default: false, help: '' },
  { name: 'handshakes', kind: 'int', default: 0, help: '' },
];

function usageError(fn: () => unknown, pattern: RegExp): void {
  expect(fn).to.throw(UsageError, pattern);
}

describe('cli: flag parsing (Go flag compatible)', () => {
  it('accepts -flag and --flag, values after a space or "=", and keeps defaults', () => {
    const a = parseArgs(SPECS, ['-addr', '127.0.0.1:1', '--handshakes=5', '-verbose']);
    expect(a.flags).to.deep.equal({ addr: '127.0.0.1:1', message: 'hi', verbose: true, handshakes: 5 });
    expect([...a.given].sort()).to.deep.equal(['addr', 'handshakes', 'verbose']);
  });

  it('takes the next argument as a value even when it starts with "-" (--message -)', () => {
    expect(parseArgs(SPECS, ['--message', '-']).flags.message).to.equal('-');
    expect(parseArgs(SPECS, ['--message', '--verbose']).flags.message).to.equal('--verbose');
    expect(parseArgs(SPECS, ['--addr=']).flags.addr).to.equal('');
  });

  it('reads boolean values given with "=" and the last repeated flag wins', () => {
    expect(parseArgs(SPECS, ['--verbose=false']).flags.verbose).to.equal(false);
    expect(parseArgs(SPECS, ['--verbose=1']).flags.verbose).to.equal(true);
    expect(parseArgs(SPECS, ['--handshakes', '1', '--handshakes', '2']).flags.handshakes).to.equal(2);
    usageError(() => parseArgs(SPECS, ['--verbose=maybe']), /invalid boolean/);
  });

  it('recognises -h, -help and --help', () => {
    for (const h of ['-h', '-help', '--help', '--h']) expect(parseArgs(SPECS, [h]).help, h).to.equal(true);
  });

  it('rejects unknown flags, missing values, bad integers and stray arguments', () => {
    usageError(() => parseArgs(SPECS, ['--nope']), /unknown flag: --nope/);
    usageError(() => parseArgs(SPECS, ['--addr']), /needs a value: --addr/);
    usageError(() => parseArgs(SPECS, ['--handshakes', '-1']), /non-negative integer/);
    usageError(() => parseArgs(SPECS, ['--handshakes', '1e3']), /non-negative integer/);
    usageError(() => parseArgs(SPECS, ['stray']), /unexpected argument: stray/);
    usageError(() => parseArgs(SPECS, ['---addr', 'x']), /bad flag syntax/);
    expect(parseArgs(SPECS, ['one'], 1).positionals).to.deep.equal(['one']);
    expect(parseArgs(SPECS, ['--', '--verbose'], 1).positionals).to.deep.equal(['--verbose']);
  });
});

describe('cli: addresses, sizes and durations', () => {
  it('parses HOST:PORT, [v6]:PORT, :PORT and PORT', () => {
    const o = { defaultHost: '0.0.0.0', allowZero: true };
    expect(parseHostPort('example.com:8443', 'x', o)).to.deep.equal({ host: 'example.com', port: 8443 });
    expect(parseHostPort('[::1]:9', 'x', o)).to.deep.equal({ host: '::1', port: 9 });
    expect(parseHostPort(':8443', 'x', o)).to.deep.equal({ host: '0.0.0.0', port: 8443 });
    expect(parseHostPort('15432', 'x', { defaultHost: '127.0.0.1' })).to.deep.equal({ host: '127.0.0.1', port: 15432 });
    expect(parseHostPort('127.0.0.1:0', 'x', o).port).to.equal(0);
    usageError(() => parseHostPort('127.0.0.1:0', '--connect', { defaultHost: 'x' }), /--connect.*port must be 1 to 65535/);
    usageError(() => parseHostPort('host:70000', 'x', o), /port must be/);
    usageError(() => parseHostPort('host', '--addr', o), /invalid --addr "host": expected HOST:PORT/);
    usageError(() => parseHostPort('::1:80', 'x', o), /expected HOST:PORT/);
    expect(formatHostPort('::1', 80)).to.equal('[::1]:80');
    expect(formatHostPort('127.0.0.1', 80)).to.equal('127.0.0.1:80');
  });

  it('parses sizes with the reference units (powers of 1024; bare numbers are bytes)', () => {
    expect(parseSize('4096')).to.equal(4096);
    expect(parseSize('1K')).to.equal(1024);
    expect(parseSize('2kb')).to.equal(2048);
    expect(parseSize('100MB')).to.equal(100 * 1024 * 1024);
    expect(parseSize('1m')).to.equal(1024 * 1024);
    expect(parseSize('1GB')).to.equal(1024 ** 3);
    expect(parseSize('1g')).to.equal(1024 ** 3);
    expect(parseSize('1.5MiB')).to.equal(1.5 * 1024 * 1024);
    usageError(() => parseSize('10XB'), /invalid --size/);
    usageError(() => parseSize('0'), /at least 1 byte/);
    usageError(() => parseSize('-5MB'), /invalid --size/);
  });

  it('parses Go durations', () => {
    expect(parseDuration('10s', 'd')).to.equal(10_000);
    expect(parseDuration('1m30s', 'd')).to.equal(90_000);
    expect(parseDuration('250ms', 'd')).to.equal(250);
    expect(parseDuration('1.5h', 'd')).to.equal(5_400_000);
    expect(parseDuration('1500us', 'd')).to.equal(1.5);
    expect(parseDuration('0', 'd')).to.equal(0);
    usageError(() => parseDuration('10', '--duration'), /invalid --duration "10"/);
    usageError(() => parseDuration('ten seconds', '--duration'), /invalid --duration/);
    usageError(() => parseDuration('', '--duration'), /invalid --duration/);
  });

  it('makes peer text safe for a terminal', () => {
    expect(printable('a\nb\x1b[31mc')).to.equal('a\\x0ab\\x1b[31mc');
    expect(printable('plain text, ünïcode')).to.equal('plain text, ünïcode');
  });
});
