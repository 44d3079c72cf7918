/**
 * Names that come from outside (config files and the environment, log fields, CLI values, key
 * files) are data, never object machinery: a service called `constructor`, a `__proto__` key or
 * log field, a `10constructor` size, a key line padded with blanks. Each case was found by
 * eslint-plugin-security (npm run lint) and fixed in lib/.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { parseSize, UsageError } from '../../lib/cli/args.js';
import { loadConfig } from '../../lib/config/load.js';
import { formatIssue } from '../../lib/config/source.js';
import { IdentityKey, parsePublicKeyLine } from '../../lib/identity/keys.js';
import { createLogger } from '../../lib/ops/logger.js';

describe('names from outside stay data (prototype keys, pathological input)', () => {
  let dir: string;
  before(() => (dir = mkdtempSync(join(tmpdir(), 'qt-proto-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('a service called `constructor` is a service, in the file and made by the environment alone', () => {
    const file = join(dir, 'constructor.yaml');
    writeFileSync(file, ['services:', '  constructor:', '    role: echo', '    listen: 127.0.0.1:0', '    no-auth: true', ''].join('\n'));
    const r = loadConfig(file, { QUANTUM_VPN_SERVICES__CONSTRUCTOR__DRAIN_TIMEOUT: '7s' });
    if (!r.ok) throw new Error(r.issues.map(formatIssue).join('\n'));
    expect(r.config.services.map((s) => `${s.name}:${s.role}`)).to.deep.equal(['constructor:echo']);
    expect(r.config.services[0]!.settings.drainTimeoutMs).to.equal(7000);
    // A service only the environment names: `constructor` is not Object.prototype's function there.
    writeFileSync(file, ['services:', '  echo:', '    role: echo', '    listen: 127.0.0.1:0', '    no-auth: true', ''].join('\n'));
    const env = { QUANTUM_VPN_SERVICES__CONSTRUCTOR__ROLE: 'echo', QUANTUM_VPN_SERVICES__CONSTRUCTOR__LISTEN: '127.0.0.1:0', QUANTUM_VPN_SERVICES__CONSTRUCTOR__NO_AUTH: 'true' };
    const fromEnv = loadConfig(file, env);
    if (!fromEnv.ok) throw new Error(fromEnv.issues.map(formatIssue).join('\n'));
    expect(fromEnv.config.services.map((s) => `${s.name}:${s.role}`).sort()).to.deep.equal(['constructor:echo', 'echo:echo']);
  });

  it('a `__proto__` key in a config file is refused by name, and pollutes nothing', () => {
    const file = join(dir, 'proto.yaml');
    writeFileSync(file, ['services:', '  echo:', '    role: echo', '    listen: 127.0.0.1:0', '    no-auth: true', '    __proto__:', '      polluted: true', ''].join('\n'));
    const r = loadConfig(file, {});
    expect(r.ok).to.equal(false);
    if (!r.ok) expect(r.issues.map(formatIssue).join('\n')).to.include('__proto__');
    expect(({} as Record<string, unknown>).polluted).to.equal(undefined);
  });

  it('a `__proto__` key in a TOML file is refused by name, as a table, a dotted key or an inline table (found by the config fuzz target)', () => {
    const base = ['[services.echo]', 'role = "echo"', 'listen = "127.0.0.1:0"', 'no-auth = true'];
    for (const [what, lines] of [
      ['a table', ['[services.__proto__]', 'role = "server"']],
      ['a nested table', ['[services.echo.__proto__]', 'role = "server"']],
      ['a dotted key', ['[defaults]', '__proto__.role = "server"']],
      ['an inline table', ['[defaults]', 'x = { __proto__ = { role = "server" } }']],
    ] as const) {
      const file = join(dir, 'proto.toml');
      writeFileSync(file, [...base, ...lines, ''].join('\n'));
      const r = loadConfig(file, {});
      expect(r.ok, what).to.equal(false);
      if (!r.ok) expect(r.issues.map(formatIssue).join('\n'), what).to.include('the key "__proto__" is not allowed');
    }
  });

  it('a `__proto__` log field is written as a field; it neither replaces the record\'s prototype nor drops the others', () => {
    const lines: string[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
        done();
      },
    });
    const log = createLogger({ format: 'json', stream, clock: () => new Date(0) });
    log.info('peer sent fields', JSON.parse('{"__proto__": {"admin": true}, "peer": "127.0.0.1"}') as Record<string, unknown>);
    expect(lines).to.have.length(1);
    const record = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(Object.hasOwn(record, '__proto__')).to.equal(true);
    expect(record['__proto__']).to.deep.equal({ admin: true });
    expect(record.peer).to.equal('127.0.0.1');
    expect(record.msg).to.equal('peer sent fields');
  });

  it('a size whose unit is a prototype property is a usage error, not NaN bytes', () => {
    for (const bad of ['10constructor', '10toString', '1__proto__', '5hasOwnProperty']) {
      expect(() => parseSize(bad), bad).to.throw(UsageError, /expected a number with an optional unit/);
    }
    expect(parseSize('2MB')).to.equal(2 * 1024 * 1024);
  });

  it('a public key line padded with tens of thousands of blanks parses (the former regex backtracked for minutes)', () => {
    const key = IdentityKey.generate();
    try {
      const line = key.publicKey.toString();
      const blanks = ' '.repeat(20_000);
      expect(parsePublicKeyLine(`${line}${blanks}\n`).comment).to.equal('');
      expect(parsePublicKeyLine(`${blanks}${line}${blanks}laptop${blanks}`).comment).to.equal('laptop');
      expect(parsePublicKeyLine(`${line} ops laptop  `).comment).to.equal('ops laptop');
      expect(parsePublicKeyLine(`${line}${blanks}\n${blanks}!`).key.equals(key.publicKey)).to.equal(true);
      // Blanks, a word, then a second line: the former pattern tried every split of the blanks.
      expect(() => parsePublicKeyLine(`${line}${blanks}x\ny`)).to.throw(/not a quantum-tunnel public key/);
      expect(() => parsePublicKeyLine(`not-a-key${blanks}AAAA${blanks}\n`)).to.throw(/not a quantum-tunnel public key/);
    } finally {
      key.destroy();
    }
  });
});
