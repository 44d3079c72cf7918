/**
 * lib/config: a configuration file (YAML or TOML) becomes the resolved services or every issue,
 * each naming file, line, column and key path; environment overrides; hostile files.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, loadServiceKeys, type LoadResult } from '../../lib/config/load.js';
import { formatIssue, MAX_CONFIG_BYTES } from '../../lib/config/source.js';
import { makePskFiles } from '../cli/helpers.js';

describe('config: loading', () => {
  let dir: string;
  before(() => (dir = mkdtempSync(join(tmpdir(), 'qt-config-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  function load(name: string, text: string | Buffer, env: NodeJS.ProcessEnv = {}): LoadResult {
    const path = join(dir, name);
    writeFileSync(path, text);
    return loadConfig(path, env);
  }
  function issues(name: string, text: string | Buffer, env: NodeJS.ProcessEnv = {}): string[] {
    const r = load(name, text, env);
    expect(r.ok, 'expected the configuration to be refused').to.equal(false);
    return r.ok ? [] : r.issues.map(formatIssue);
  }

  const GOOD_YAML = [
    'log-level: debug',
    'obs-addr: 127.0.0.1:0',
    'defaults:',
    '  drain-timeout: 5s',
    '  max-conns-per-ip: 10',
    'services:',
    '  postgres:',
    '    role: server',
    '    listen: 127.0.0.1:0',
    '    to: 127.0.0.1:5432',
    '    no-auth: true',
    '  pg-client:',
    '    role: client',
    '    listen: "15432"',
    '    connect: db.example.net:8443',
    '    no-auth: true',
    '  echo:',
    '    role: echo',
    '    listen: 127.0.0.1:0',
    '    no-auth: true',
    '',
  ].join('\n');

  it('resolves a YAML file: top-level keys, defaults inherited per role, flag defaults, and each service checked', () => {
    const r = load('good.yaml', GOOD_YAML);
    if (!r.ok) throw new Error(r.issues.map(formatIssue).join('\n'));
    expect(r.config.logLevel).to.equal('debug');
    expect(r.config.obsAddr).to.equal('127.0.0.1:0');
    expect(r.config.services.map((s) => `${s.name}:${s.role}`)).to.deep.equal(['postgres:server', 'pg-client:client', 'echo:echo']);
    const [server, client, echo] = r.config.services;
    expect(server!.settings.drainTimeoutMs).to.equal(5000);
    expect(server!.flags['max-conns-per-ip']).to.equal(10);
    expect(server!.settings.connectTimeoutMs).to.equal(10_000); // forward's flag default
    // A client inherits no server-only default (forward would refuse a rate limit on a client).
    expect(client!.flags['max-conns-per-ip']).to.equal(0);
    expect(client!.settings.listenAddr).to.deep.equal({ host: '127.0.0.1', port: 15432 });
    expect(echo!.settings.remote).to.equal('echo');
  });

  it('resolves the same configuration written in TOML', () => {
    const r = load(
      'good.toml',
      ['log-level = "warn"', '[defaults]', 'drain-timeout = "5s"', '[services.postgres]', 'role = "server"', 'listen = "127.0.0.1:0"', 'to = "127.0.0.1:5432"', 'no-auth = true', '[services.pg-client]', 'role = "client"', 'listen = "127.0.0.1:0"', 'connect = { }'].join('\n').replace('connect = { }', 'connect = "db:8443"\nno-auth = true'),
    );
    if (!r.ok) throw new Error(r.issues.map(formatIssue).join('\n'));
    expect(r.config.logLevel).to.equal('warn');
    expect(r.config.services.map((s) => s.name)).to.deep.equal(['postgres', 'pg-client']);
    expect(r.config.services[0]!.settings.drainTimeoutMs).to.equal(5000);
  });

  it('reports every invalid value of a YAML file at once, with file, line, column and key path', () => {
    const text = GOOD_YAML.replace('listen: 127.0.0.1:0\n    to', 'listen: 127.0.0.1:notaport\n    to')
      .replace('drain-timeout: 5s', 'drain-timeout: soon')
      .replace('max-conns-per-ip: 10', 'max-conns-per-ip: -1')
      .replace('log-level: debug', 'log-level: loud')
      .replace("    no-auth: true\n  echo", "    no-auth: yes please\n  echo");
    expect(issues('bad.yaml', text)).to.deep.equal([
      'bad.yaml:1:12: log-level: expected debug, info, warn, error or silent',
      'bad.yaml:4:18: defaults.drain-timeout: expected a duration such as 10s, 500ms or 1m30s',
      'bad.yaml:5:21: defaults.max-conns-per-ip: expected a non-negative integer',
      'bad.yaml:9:13: services.postgres.listen: expected HOST:PORT',
      'bad.yaml:16:14: services.pg-client.no-auth: expected true or false',
    ]);
  });

  it('reports TOML errors with their positions too', () => {
    const text = ['log-format = "xml"', '', '[services.pg]', 'role = "server"', 'listen = "127.0.0.1:0"', 'to = "127.0.0.1:99999"', 'no-auth = true', 'handshake-rate = 1.5'].join('\n');
    expect(issues('bad.toml', text)).to.deep.equal([
      'bad.toml:1:14: log-format: expected text or json',
      'bad.toml:6:6: services.pg.to: port must be 1 to 65535',
      'bad.toml:8:18: services.pg.handshake-rate: expected a non-negative integer',
    ]);
  });

  it('rejects unknown keys at their line, with a suggestion, and bad service names', () => {
    const text = GOOD_YAML.replace('    to: 127.0.0.1:5432', '    to: 127.0.0.1:5432\n    lisen: 1').replace('obs-addr:', 'obs-adr:').replace('  echo:', '  Echo_1:');
    expect(issues('unknown.yaml', text)).to.deep.equal([
      'unknown.yaml:2:1: obs-adr: unknown key (did you mean "obs-addr"?)',
      'unknown.yaml:11:5: services.postgres.lisen: unknown key (did you mean "listen"?)',
      'unknown.yaml:18:3: services.Echo_1: service names are lower case letters, digits and "-" (at most 63)',
    ]);
    expect(issues('unknown.toml', '[services.a]\nrole = "echo"\nlisten = "1"\nno-auth = true\nfrobnicate = 1\n')).to.deep.equal(['unknown.toml:5:1: services.a.frobnicate: unknown key']);
  });

  it('checks each service across keys with forward\'s rules: role, required keys, authentication', () => {
    const text = [
      'services:',
      '  norole:',
      '    listen: "1"',
      '  server:',
      '    role: server',
      '    listen: "1"',
      '    no-auth: true',
      '  client:',
      '    role: client',
      '    listen: "1"',
      '    connect: h:1',
      '    to: h:2',
      '  open:',
      '    role: echo',
      '    listen: "1"',
      '  limited:',
      '    role: client',
      '    listen: "1"',
      '    connect: h:1',
      '    no-auth: true',
      '    handshake-rate: 5',
    ].join('\n');
    expect(issues('semantic.yaml', text)).to.deep.equal([
      'semantic.yaml:2:3: services.norole: role is required: server, client or echo',
      'semantic.yaml:4:3: services.server: to is required for role server (the TCP service to protect)',
      'semantic.yaml:12:9: services.client.to: does not apply to role client',
      'semantic.yaml:13:3: services.open: forward needs an authentication mode: identity FILE (pinned keys, with authorized-peers for the clients; or with cert, a certificate, with ca for the clients) or psk-file FILE; or no-auth to run without',
      'semantic.yaml:21:21: services.limited.handshake-rate: handshake-rate applies to the server side (to) only',
    ]);
  });

  it('rejects duplicate keys, syntax errors, an empty file and a missing services map', () => {
    expect(issues('dup.yaml', 'services: {}\nlog-level: info\nlog-level: debug\n')).to.deep.equal(['dup.yaml:3:1: Map keys must be unique']);
    expect(issues('dup.toml', 'log-level = "info"\nlog-level = "debug"\n')[0]).to.match(/^dup\.toml:2:1: /);
    expect(issues('syntax.yaml', 'services:\n  a: [\n')[0]).to.match(/^syntax\.yaml:\d+:\d+: /);
    expect(issues('syntax.toml', '[services\n')[0]).to.match(/^syntax\.toml:\d+:\d+: /);
    expect(issues('empty.yaml', '')).to.deep.equal(['empty.yaml: empty configuration: define at least one service under "services"']);
    expect(issues('empty.toml', '# nothing\n')).to.deep.equal(['empty.toml: empty configuration: define at least one service under "services"']);
    expect(issues('noservices.yaml', 'log-level: info\n')).to.deep.equal(['noservices.yaml: services: required']);
    expect(issues('list.yaml', '- a\n- b\n')[0]).to.match(/^list\.yaml:.*expected object/);
    expect(issues('zero.yaml', 'services: {}\n')).to.deep.equal(['zero.yaml:1:11: services: define at least one service']);
  });

  it('refuses a huge file, a binary file, an unknown extension and a missing file cleanly', () => {
    expect(issues('huge.yaml', Buffer.alloc(MAX_CONFIG_BYTES + 1, 0x61))).to.deep.equal([`huge.yaml: too large (${MAX_CONFIG_BYTES + 1} bytes; at most ${MAX_CONFIG_BYTES})`]);
    expect(issues('binary.yaml', Buffer.from([0x73, 0x3a, 0xff, 0xfe, 0x00]))).to.deep.equal(['binary.yaml: not a text file (invalid UTF-8)']);
    expect(issues('nul.toml', 'a = 1\0')).to.deep.equal(['nul.toml: not a text file (contains NUL bytes)']);
    expect(issues('config.json', '{}')).to.deep.equal(['config.json: unknown file type: the name must end in .yaml, .yml or .toml']);
    const r = loadConfig(join(dir, 'absent.yaml'), {});
    expect(r.ok).to.equal(false);
    if (!r.ok) expect(formatIssue(r.issues[0]!)).to.equal('absent.yaml: cannot read: ENOENT');
  });

  it('refuses absurd nesting without overflowing the stack', () => {
    expect(issues('deep.yaml', `a: ${'['.repeat(30_000)}${']'.repeat(30_000)}\n`).join('\n')).to.match(/nested too deeply/);
    expect(issues('deep.toml', `a = ${'['.repeat(30_000)}${']'.repeat(30_000)}\n`).join('\n')).to.match(/nested too deeply/);
  });

  it('bounds YAML alias expansion (a "billion laughs" file is an error)', () => {
    const lines = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]'];
    for (let i = 1; i < 12; i++) lines.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(10).fill(`*${String.fromCharCode(96 + i)}`).join(',')}]`);
    const found = issues('laughs.yaml', `${lines.join('\n')}\nservices: {}\n`);
    expect(found.join('\n')).to.match(/alias/i);
  });

  it('applies environment overrides (typed as their flags) over the file, and names the variable in errors', () => {
    const r = load('env.yaml', GOOD_YAML, {
      QUANTUM_VPN_LOG_LEVEL: 'error',
      QUANTUM_VPN_FIPS: 'false',
      QUANTUM_VPN_DEFAULTS__CONNECT_TIMEOUT: '2s',
      QUANTUM_VPN_SERVICES__POSTGRES__LISTEN: '127.0.0.1:9443',
      QUANTUM_VPN_SERVICES__PG_CLIENT__NO_AUTH: 'true',
      QUANTUM_VPN_SERVICES__POSTGRES__MAX_CONNS_PER_IP: '3',
      QUANTUM_VPN_WORKER: '1', // forward's own, not configuration
    });
    if (!r.ok) throw new Error(r.issues.map(formatIssue).join('\n'));
    expect(r.config.logLevel).to.equal('error');
    const [server, client] = r.config.services;
    expect(server!.settings.listenAddr.port).to.equal(9443);
    expect(server!.flags['max-conns-per-ip']).to.equal(3);
    expect(client!.settings.connectTimeoutMs).to.equal(2000);
    // A service defined in the environment alone.
    const added = load('env2.yaml', GOOD_YAML, { QUANTUM_VPN_SERVICES__EXTRA__ROLE: 'echo', QUANTUM_VPN_SERVICES__EXTRA__LISTEN: '0', QUANTUM_VPN_SERVICES__EXTRA__NO_AUTH: '1' });
    expect(added.ok && added.config.services.map((s) => s.name)).to.deep.equal(['postgres', 'pg-client', 'echo', 'extra']);
    expect(
      issues('env3.yaml', GOOD_YAML, {
        QUANTUM_VPN_SERVICES__POSTGRES__TO: 'nowhere',
        QUANTUM_VPN_FIPS: 'maybe',
        QUANTUM_VPN_LOGLEVEL: 'debug',
      }),
    ).to.deep.equal([
      'environment QUANTUM_VPN_FIPS: fips: expected true or false',
      'environment QUANTUM_VPN_LOGLEVEL: not a configuration key: use QUANTUM_VPN_<KEY>, QUANTUM_VPN_DEFAULTS__<KEY> or QUANTUM_VPN_SERVICES__<NAME>__<KEY> (docs/OPERATIONS.md)',
      'environment QUANTUM_VPN_SERVICES__POSTGRES__TO: services.postgres.to: expected HOST:PORT',
    ]);
  });

  it('a reload sees a changed service: any key, or a key file changed on disk (its fingerprint)', () => {
    const psk = join(dir, 'fp.psk');
    writeFileSync(psk, 'x');
    const text = (timeout: string) => ['services:', '  a:', '    role: echo', '    listen: "0"', `    psk-file: ${psk}`, `    handshake-timeout: ${timeout}`].join('\n');
    const fp = (t: string) => {
      const r = load('fp.yaml', text(t));
      return r.ok ? r.config.services[0]!.fingerprint : r.issues.map(formatIssue).join('\n');
    };
    const first = fp('10s');
    expect(fp('10s')).to.equal(first);
    expect(fp('11s')).to.not.equal(first);
    writeFileSync(psk, 'longer');
    expect(fp('10s')).to.not.equal(first);
  });

  it('loads key files as serve would, and a bad one is an issue at its key without its contents', async () => {
    const { dir: pskDir, files } = await makePskFiles(['svc']);
    try {
      const secretish = join(dir, 'not-a-psk');
      writeFileSync(secretish, 'TOPSECRET-VALUE\n', { mode: 0o600 });
      const text = ['services:', '  a:', '    role: echo', '    listen: "0"', `    psk-file: ${files[0]}`, '  b:', '    role: echo', '    listen: "0"', `    psk-file: ${secretish}`].join('\n');
      const r = load('keys.yaml', text);
      if (!r.ok) throw new Error(r.issues.map(formatIssue).join('\n'));
      expect(loadServiceKeys(r.config.services[0]!)).to.equal(undefined);
      const issue = loadServiceKeys(r.config.services[1]!);
      expect(issue).to.not.equal(undefined);
      const line = formatIssue(issue!);
      expect(line).to.match(/^keys\.yaml:9:15: services\.b\.psk-file: /);
      expect(line).to.not.contain('TOPSECRET');
    } finally {
      rmSync(pskDir, { recursive: true, force: true });
    }
  });
});
