/**
 * Structured logging: text and JSON lines, levels, child bindings, address masking, and the rule
 * that no secret is ever written (Secret handles, Buffers and secret-named fields).
 */
import { Writable } from 'node:stream';
import { expect } from 'chai';
import {
  createLogger,
  crypto,
  ErrorCode,
  fromPino,
  LoggingObserver,
  maskAddress,
  parseLogLevel,
  QuantumTunnelError,
  type Logger,
  type LogLevel,
  type PinoLike,
} from '../../lib/index.js';
import { echo, Resources, roundTrip, until, within } from '../helpers/tunnel.js';
import * as testing from '../../lib/testing.js';

/** A stream that keeps every line written to it. */
class Lines extends Writable {
  readonly lines: string[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    for (const l of chunk.toString('utf8').split('\n')) if (l !== '') this.lines.push(l);
    cb();
  }
  get json(): Array<Record<string, unknown>> {
    return this.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  }
  get text(): string {
    return this.lines.join('\n');
  }
}

const FIXED = () => new Date('2026-01-02T03:04:05.678Z');

describe('ops: logger', () => {
  it('JSON lines: time, level, msg, base fields, then the call fields', () => {
    const out = new Lines();
    const log = createLogger({ format: 'json', stream: out, base: { app: 'quantum-vpn' }, clock: FIXED });
    log.info('session started', { role: 'server', bytes: 12 });
    expect(out.json).to.deep.equal([{ time: '2026-01-02T03:04:05.678Z', level: 'info', msg: 'session started', app: 'quantum-vpn', role: 'server', bytes: 12 }]);
  });

  it('text lines: ISO time, padded level, message, k=v with quoting for anything not a plain token', () => {
    const out = new Lines();
    const log = createLogger({ stream: out, clock: FIXED, color: false });
    log.warn('handshake failed', { error: 'ERR_QT_HANDSHAKE_TIMEOUT', remote_ip: '10.0.0.x', note: 'two words', n: 3, ok: true });
    expect(out.lines).to.deep.equal([
      '2026-01-02T03:04:05.678Z WARN  handshake failed error=ERR_QT_HANDSHAKE_TIMEOUT remote_ip=10.0.0.x note="two words" n=3 ok=true',
    ]);
  });

  it('colours the level only when asked (or on a TTY)', () => {
    const out = new Lines();
    createLogger({ stream: out, color: true, clock: FIXED }).error('boom');
    expect(out.lines[0]).to.include('\x1b[31mERROR\x1b[0m');
    const plain = new Lines();
    createLogger({ stream: plain, clock: FIXED }).error('boom');
    expect(plain.lines[0]).to.not.include('\x1b[');
  });

  it('a peer-controlled string cannot break a text line or inject escapes', () => {
    const out = new Lines();
    const log = createLogger({ stream: out, clock: FIXED, color: false });
    log.info('alert\nFAKE 2026 ERROR injected', { description: 'x\ny\x1b[31m' });
    expect(out.lines).to.have.length(1);
    expect(out.lines[0]).to.include('alert\\nFAKE');
    expect(out.lines[0]).to.include('description="x\\ny\\u001b[31m"');
  });

  it('levels filter, can be changed at run time, and silent writes nothing', () => {
    const out = new Lines();
    const log = createLogger({ format: 'json', stream: out, level: 'warn' });
    log.debug('d');
    log.info('i');
    log.warn('w');
    log.error('e');
    expect(out.json.map((r) => r.level)).to.deep.equal(['warn', 'error']);
    log.level = 'debug';
    log.debug('d2');
    expect(out.json.at(-1)!.msg).to.equal('d2');
    log.level = 'silent';
    log.error('nothing');
    expect(out.lines).to.have.length(3);
    expect(() => {
      log.level = 'loud' as LogLevel;
    }).to.throw(QuantumTunnelError);
  });

  it('child loggers add bindings, inherit the level, and do not change the parent', () => {
    const out = new Lines();
    const root = createLogger({ format: 'json', stream: out, base: { app: 'a' }, level: 'info' });
    const child = root.child({ component: 'tunnel' });
    const grandchild = child.child({ session: 7 });
    grandchild.info('hello', { extra: 1 });
    root.info('root');
    expect(out.json[0]).to.include({ app: 'a', component: 'tunnel', session: 7, extra: 1, msg: 'hello' });
    expect(out.json[1]).to.not.have.property('component');
    expect(child.level).to.equal('info');
    grandchild.debug('filtered');
    expect(out.lines).to.have.length(2);
  });

  it('reserved keys in fields do not overwrite time, level or msg', () => {
    const out = new Lines();
    createLogger({ format: 'json', stream: out, clock: FIXED }).info('real', { msg: 'fake', level: 'error' });
    expect(out.json[0]).to.include({ msg: 'real', level: 'info', field_msg: 'fake', field_level: 'error' });
  });

  it('never writes secret bytes: Secret handles, Buffers, typed arrays, secret-named fields', () => {
    const secret = crypto.randomSecret(32);
    const bytes = testing.exportSecret(secret);
    const out = new Lines();
    const log = createLogger({ format: 'json', stream: out });
    const txt = new Lines();
    const tlog = createLogger({ stream: txt, color: false });
    const fields = {
      handle: secret,
      buffer: bytes,
      view: new Uint8Array(bytes),
      arrayBuffer: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length),
      nested: { deeper: { key: bytes.toString('hex'), value: bytes } },
      psk: bytes.toString('hex'),
      masterSecret: bytes.toString('base64'),
      ticket: 'abcd',
      privateKey: 'x',
      publicKey: 'fine',
      list: [bytes, secret],
    };
    log.info('material', fields);
    tlog.info('material', fields);
    child(log).info('bound');
    for (const written of [out.text, txt.text]) {
      for (const encoding of ['hex', 'base64'] as const) expect(written).to.not.include(bytes.toString(encoding));
      expect(written).to.not.include(JSON.stringify([...bytes]).slice(1, 40)); // no byte-array dump
    }
    const rec = out.json[0]!;
    expect(rec.handle).to.equal('[Secret]');
    expect(rec.buffer).to.equal('[Buffer 32 bytes]');
    expect(rec.view).to.equal('[Uint8Array 32 bytes]');
    expect(rec.arrayBuffer).to.equal('[ArrayBuffer 32 bytes]');
    expect(rec.nested).to.deep.equal({ deeper: { key: '[REDACTED]', value: '[Buffer 32 bytes]' } });
    expect(rec).to.include({ psk: '[REDACTED]', masterSecret: '[REDACTED]', ticket: '[REDACTED]', privateKey: '[REDACTED]', publicKey: 'fine' });
    expect(rec.list).to.deep.equal(['[Buffer 32 bytes]', rec.handle]);
    expect(out.json[1]).to.include({ secret: '[REDACTED]' });
    secret.destroy();

    function child(l: Logger): Logger {
      return l.child({ secret: bytes, seed: 1 });
    }
  });

  it('errors are written as name, code and message; cycles and depth are bounded', () => {
    const out = new Lines();
    const log = createLogger({ format: 'json', stream: out });
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    log.error('failed', { error: new QuantumTunnelError('tunnel closed', ErrorCode.TUNNEL_CLOSED), cyclic, deep: { a: { b: { c: { d: { e: 1 } } } } } });
    const rec = out.json[0]!;
    expect(rec.error).to.deep.equal({ name: 'QuantumTunnelError', message: 'tunnel closed', code: 'ERR_QT_TUNNEL_CLOSED' });
    expect(rec.cyclic).to.deep.equal({ a: 1, self: '[Circular]' });
    expect(JSON.stringify(rec.deep)).to.include('[Object]');
  });

  it('a stream that throws never breaks the caller', () => {
    const broken = new Writable({ write: () => { throw new Error('disk full'); } });
    const log = createLogger({ stream: broken });
    expect(() => log.error('still fine')).to.not.throw();
  });

  it('parseLogLevel accepts the reference names and refuses the rest', () => {
    const cases: Record<string, LogLevel> = { debug: 'debug', INFO: 'info', warn: 'warn', Warning: 'warn', error: 'error', silent: 'silent', off: 'silent', NONE: 'silent', ' info ': 'info' };
    for (const [input, level] of Object.entries(cases)) expect(parseLogLevel(input), input).to.equal(level);
    for (const bad of ['', 'verbose', 'trace', 'fatal', 'inf']) {
      expect(() => parseLogLevel(bad), bad).to.throw(QuantumTunnelError).with.property('code', ErrorCode.INVALID_ARGUMENT);
    }
  });

  it('maskAddress keeps an IPv4 /24 and an IPv6 /64', () => {
    expect(maskAddress('192.168.1.77')).to.equal('192.168.1.x');
    expect(maskAddress('127.0.0.1')).to.equal('127.0.0.x');
    expect(maskAddress('2001:db8:1:2:3:4:5:6')).to.equal('2001:db8:1:2:x:x:x:x');
    expect(maskAddress('2001:0DB8:0001:0002::9')).to.equal('2001:db8:1:2:x:x:x:x');
    expect(maskAddress('2001:db8::1')).to.equal('2001:db8:0:0:x:x:x:x');
    expect(maskAddress('::1')).to.equal('0:0:0:0:x:x:x:x');
    expect(maskAddress('fe80::1%eth0')).to.equal('fe80:0:0:0:x:x:x:x');
    expect(maskAddress('::ffff:10.1.2.3')).to.equal('10.1.2.x');
    expect(maskAddress(undefined)).to.equal('unknown');
    expect(maskAddress('')).to.equal('unknown');
    expect(maskAddress('evil.example.com')).to.equal('[masked]');
    expect(maskAddress('1.2.3.4\nFAKE')).to.equal('[masked]');
  });

  it('fromPino passes fields first, as pino expects, sanitised', () => {
    const calls: Array<[string, object, string | undefined]> = [];
    const make = (bindings: Record<string, unknown>): PinoLike => ({
      level: 'info',
      debug: (o, m) => calls.push(['debug', { ...bindings, ...o }, m]),
      info: (o, m) => calls.push(['info', { ...bindings, ...o }, m]),
      warn: (o, m) => calls.push(['warn', { ...bindings, ...o }, m]),
      error: (o, m) => calls.push(['error', { ...bindings, ...o }, m]),
      child: (b) => make({ ...bindings, ...b }),
    });
    const log = fromPino(make({}));
    log.child({ component: 'x' }).warn('careful', { key: Buffer.alloc(4), n: 1 });
    expect(calls).to.deep.equal([['warn', { component: 'x', key: '[REDACTED]', n: 1 }, 'careful']]);
    expect(log.level).to.equal('info');
  });
});

describe('ops: LoggingObserver on a real tunnel', function () {
  this.timeout(30_000);
  const res = new Resources();
  afterEach(() => res.cleanup());

  it('logs the session lifecycle with masked addresses and no traffic lines', async () => {
    const out = new Lines();
    const log = createLogger({ format: 'json', stream: out, level: 'debug' });
    const listener = await res.listen({ observer: new LoggingObserver(log.child({ side: 'server' })) }, echo);
    const t = await res.dial(listener, { observer: new LoggingObserver(log.child({ side: 'client' })) });
    await roundTrip(t, Buffer.from('hello'));
    await within(t.rekey(), 10_000, 'rekey');
    await within(t.close(), 5000, 'close');
    await until(() => out.json.filter((r) => r.msg === 'session ended').length === 2, 5000, 'both session ended lines');
    const msgs = out.json.map((r) => `${r.side} ${r.level} ${r.msg}`);
    expect(msgs).to.include.members([
      'server debug connection accepted',
      'server debug handshake started',
      'client debug handshake started',
      'server info handshake completed',
      'client info handshake completed',
      'client debug rekey started',
      'client info rekey completed',
      'server info rekey completed',
      'server info session ended',
      'client info session ended',
    ]);
    const completed = out.json.find((r) => r.msg === 'handshake completed' && r.side === 'server')!;
    expect(completed).to.include({ role: 'server', remote_ip: '127.0.0.x', resumed: false });
    expect(completed.suite).to.be.a('string');
    expect(completed.duration_ms).to.be.a('number');
    expect(out.text).to.not.include('127.0.0.1');
    const ended = out.json.find((r) => r.msg === 'session ended' && r.side === 'client')!;
    expect(ended).to.include({ bytes_sent: 5, bytes_received: 5 });
  });
});
