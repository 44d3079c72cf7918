/**
 * The observer hooks for listener caps and unhandled tunnel errors, as lib/ops sees them:
 * onRateLimited with every kind, onPendingHandshakes (a gauge), onTunnelError (a counter by code,
 * a log line), and RateLimiter.admitRekey (a rekey takes a handshake token). The hooks are called
 * directly, as the listener calls them; the exposition is read back from the registry.
 */
import { Writable } from 'node:stream';
import { expect } from 'chai';
import { createLogger, ErrorCode, LoggingObserver, RateLimiter, TunnelMetrics, type PeerAddress, type RateLimitKind, type TunnelObserver } from '../../lib/index.js';

const peer = (address: string | undefined, port = 40000): PeerAddress => ({ address, port });

/** A stream that keeps every JSON line written to it. */
class Lines extends Writable {
  readonly records: Array<Record<string, unknown>> = [];
  override _write(chunk: Buffer, _e: BufferEncoding, cb: () => void): void {
    for (const l of chunk.toString('utf8').split('\n')) if (l !== '') this.records.push(JSON.parse(l) as Record<string, unknown>);
    cb();
  }
}

/** The value of one sample line (`name{labels} value`), or undefined. */
function sample(text: string, line: RegExp): number | undefined {
  const m = new RegExp(`^${line.source} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

/** A settable clock in milliseconds. */
function clock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

describe('ops: metrics of the listener caps and unhandled tunnel errors', () => {
  it('onRateLimited counts each kind in its own counter', async () => {
    const m = new TunnelMetrics();
    const kinds: RateLimitKind[] = ['connection', 'handshake', 'handshake', 'rekey', 'rekey', 'rekey', 'pending-handshakes'];
    for (const k of kinds) m.onRateLimited(k, peer('10.0.0.1'));
    const text = await m.registry.metrics();
    expect(sample(text, /quantum_vpn_rate_limit_connections_total/)).to.equal(1);
    expect(sample(text, /quantum_vpn_rate_limit_handshakes_total/)).to.equal(2);
    expect(sample(text, /quantum_vpn_rate_limit_rekeys_total/)).to.equal(3);
    expect(sample(text, /quantum_vpn_rate_limit_pending_handshakes_total/)).to.equal(1);
    expect(text).to.include('# TYPE quantum_vpn_rate_limit_rekeys_total counter');
    expect(m.snapshot()).to.include({ rateLimitedConnections: 1, rateLimitedHandshakes: 2, rateLimitedRekeys: 3, rateLimitedPendingHandshakes: 1 });
  });

  it('onPendingHandshakes sets the quantum_vpn_handshakes_pending gauge', async () => {
    const m = new TunnelMetrics({ labels: { service: 'svc' } });
    let text = await m.registry.metrics();
    expect(text).to.include('# TYPE quantum_vpn_handshakes_pending gauge');
    expect(sample(text, /quantum_vpn_handshakes_pending\{service="svc"\}/)).to.equal(0);
    m.onPendingHandshakes(5);
    m.onPendingHandshakes(3);
    text = await m.registry.metrics();
    expect(sample(text, /quantum_vpn_handshakes_pending\{service="svc"\}/)).to.equal(3);
    expect(m.snapshot().handshakesPending).to.equal(3);
    m.onPendingHandshakes(0);
    expect(sample(await m.registry.metrics(), /quantum_vpn_handshakes_pending\{service="svc"\}/)).to.equal(0);
  });

  it('onTunnelError counts by ERR_QT_* code; anything else is "other", so the label stays bounded', async () => {
    const m = new TunnelMetrics({ labels: { service: 'svc' } });
    m.onTunnelError(ErrorCode.AUTHENTICATION_FAILED, peer('10.0.0.1'));
    m.onTunnelError(ErrorCode.AUTHENTICATION_FAILED, peer('10.0.0.2'));
    m.onTunnelError(ErrorCode.TRUNCATED, peer('10.0.0.3'));
    for (let i = 0; i < 50; i++) m.onTunnelError(`ECONN${i}`, peer('10.0.0.4'));
    const text = await m.registry.metrics();
    expect(text).to.include('# TYPE quantum_vpn_tunnel_errors_unhandled_total counter');
    expect(sample(text, /quantum_vpn_tunnel_errors_unhandled_total\{service="svc",code="ERR_QT_AUTHENTICATION_FAILED"\}/)).to.equal(2);
    expect(sample(text, /quantum_vpn_tunnel_errors_unhandled_total\{service="svc",code="ERR_QT_TRUNCATED"\}/)).to.equal(1);
    expect(sample(text, /quantum_vpn_tunnel_errors_unhandled_total\{service="svc",code="other"\}/)).to.equal(50);
    const series = text.split('\n').filter((l) => l.startsWith('quantum_vpn_tunnel_errors_unhandled_total{'));
    expect(series).to.have.length(3);
    expect(m.snapshot().tunnelErrorsUnhandled).to.equal(53);
  });

  it('a constant label named "code" is refused (it would clash with the error counter\'s label)', () => {
    expect(() => new TunnelMetrics({ labels: { code: 'x' } })).to.throw().with.property('code', ErrorCode.INVALID_ARGUMENT);
  });
});

describe('ops: LoggingObserver for the listener caps and unhandled tunnel errors', () => {
  function observer(options: ConstructorParameters<typeof LoggingObserver>[1] = {}, level: 'debug' | 'info' = 'debug'): { lines: Lines; o: LoggingObserver } {
    const lines = new Lines();
    return { lines, o: new LoggingObserver(createLogger({ stream: lines, format: 'json', level }), options) };
  }

  it('names each rate-limit kind; a full handshake queue is a warning at most once per 10 s', () => {
    const c = clock();
    const { lines, o } = observer({ now: c.now });
    o.onRateLimited('connection', peer('10.0.0.1'));
    o.onRateLimited('handshake', peer('10.0.0.1'));
    o.onRateLimited('rekey', peer('10.0.0.1'));
    for (let i = 0; i < 20; i++) o.onRateLimited('pending-handshakes', peer('10.0.0.1'));
    const msgs = lines.records.map((r) => `${String(r.level)} ${String(r.msg)}`);
    expect(msgs.slice(0, 3)).to.deep.equal(['debug connection rate limit exceeded', 'debug handshake rate limit exceeded', 'debug rekey rate limit exceeded']);
    const pending = () => lines.records.filter((r) => r.msg === 'too many handshakes in progress');
    expect(pending()).to.have.length(1); // once per interval, not once per refused socket
    expect(pending()[0]).to.include({ level: 'warn', remote_ip: '10.0.0.x' });
    c.advance(9_999);
    o.onRateLimited('pending-handshakes', peer('10.0.0.1'));
    expect(pending()).to.have.length(1);
    c.advance(1);
    o.onRateLimited('pending-handshakes', peer('10.0.0.1'));
    expect(pending()).to.have.length(2);
    expect(pending()[1]).to.include({ suppressed: 20 });
    expect(lines.records.every((r) => !JSON.stringify(r).includes('10.0.0.1'))).to.equal(true);
  });

  it('logs an unhandled tunnel error at warn with its code and the masked peer; tunnelErrors: false turns it off', () => {
    const { lines, o } = observer({}, 'info');
    o.onTunnelError(ErrorCode.AUTHENTICATION_FAILED, peer('192.0.2.55', 51000));
    expect(lines.records).to.have.length(1);
    expect(lines.records[0]).to.include({ level: 'warn', msg: 'tunnel error not handled by the application', error: 'ERR_QT_AUTHENTICATION_FAILED', remote_ip: '192.0.2.x', remote_port: 51000 });
    const off = observer({ tunnelErrors: false }, 'debug');
    off.o.onTunnelError(ErrorCode.AUTHENTICATION_FAILED, peer('192.0.2.55'));
    expect(off.lines.records).to.have.length(0);
  });

  it('onPendingHandshakes writes no line (it is a gauge, not an event)', () => {
    const { lines, o } = observer();
    (o as TunnelObserver).onPendingHandshakes?.(7);
    expect(lines.records).to.have.length(0);
  });
});

describe('ops: RateLimiter.admitRekey', () => {
  it('a rekey takes a token from the per-address bucket, like a handshake; false when none is left', () => {
    const c = clock();
    const limiter = new RateLimiter({ handshakesPerSecondPerIp: 1, handshakeBurstPerIp: 3, now: c.now });
    expect(limiter.admit(peer('10.0.0.1')).ok).to.equal(true); // the connection's handshake: 2 tokens left
    expect(limiter.admitRekey(peer('10.0.0.1'))).to.equal(true);
    expect(limiter.admitRekey(peer('10.0.0.1'))).to.equal(true);
    expect(limiter.admitRekey(peer('10.0.0.1'))).to.equal(false);
    // The rekeys used the handshake budget: a new connection from the address is refused too.
    expect(limiter.admit(peer('10.0.0.1'))).to.deep.include({ ok: false, reason: 'handshake' });
    // Another address has its own bucket.
    expect(limiter.admitRekey(peer('10.0.0.2'))).to.equal(true);
    c.advance(1000);
    expect(limiter.admitRekey(peer('10.0.0.1'))).to.equal(true);
    expect(limiter.stats()).to.include({ rejectedRekeys: 1 });
  });

  it('the global bucket is shared by handshakes and rekeys of every address', () => {
    const c = clock();
    const limiter = new RateLimiter({ globalHandshakesPerSecond: 2, globalHandshakeBurst: 2, now: c.now });
    expect(limiter.admitRekey(peer('10.0.0.1'))).to.equal(true);
    expect(limiter.admitRekey(peer('10.0.0.2'))).to.equal(true);
    expect(limiter.admitRekey(peer('10.0.0.3'))).to.equal(false);
    expect(limiter.admit(peer('10.0.0.4'))).to.deep.include({ ok: false, reason: 'handshake' });
    c.advance(500);
    expect(limiter.admitRekey(peer('10.0.0.3'))).to.equal(true);
  });

  it('a rekey refused by the per-address bucket takes no global token', () => {
    const c = clock();
    const limiter = new RateLimiter({ handshakesPerSecondPerIp: 1, handshakeBurstPerIp: 1, globalHandshakesPerSecond: 1, globalHandshakeBurst: 2, now: c.now });
    expect(limiter.admitRekey(peer('10.0.0.1'))).to.equal(true); // global: 1 left
    for (let i = 0; i < 5; i++) expect(limiter.admitRekey(peer('10.0.0.1'))).to.equal(false);
    expect(limiter.admitRekey(peer('10.0.0.2'))).to.equal(true); // the global token is still there
  });

  it('with no rate limit every rekey is admitted; refusals are logged at warn, masked and throttled', () => {
    const open = new RateLimiter({ maxConnectionsPerIp: 1 });
    for (let i = 0; i < 100; i++) expect(open.admitRekey(peer('10.0.0.1'))).to.equal(true);
    const c = clock();
    const lines = new Lines();
    const limiter = new RateLimiter({ handshakesPerSecondPerIp: 1, now: c.now, logger: createLogger({ stream: lines, format: 'json', level: 'debug' }) });
    limiter.admitRekey(peer('10.0.0.1'));
    for (let i = 0; i < 10; i++) limiter.admitRekey(peer('10.0.0.1'));
    const warn = lines.records.filter((r) => r.msg === 'rekey rate limit exceeded');
    expect(warn).to.have.length(1);
    expect(warn[0]).to.include({ level: 'warn', remote_ip: '10.0.0.x', component: 'rate_limit' });
  });
});
