/**
 * PROXY protocol v1/v2 on the listening side (issue 12, item 3): the parser against the byte
 * vectors of HAProxy's spec, then a real listener behind a test balancer (a TCP relay on
 * 127.0.0.1 that prepends a header) and raw sockets sending hostile headers.
 */
import { once } from 'node:events';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { expect } from 'chai';
import { ErrorCode, listen, type Listener, type PeerAddress, QuantumTunnelError, RateLimiter, type TunnelObserver } from '../../lib/index.js';
import { DEFAULT_MAX_V2_LENGTH, type ProxyHeader, ProxyHeaderParser, V2_SIGNATURE } from '../../lib/tunnel/proxyProtocol.js';
import { encodeProxyHeader } from '../../lib/tunnel/proxyHeaderWriter.js';
import { killAll, startCli } from '../cli/helpers.js';
import { type FlagValues, UsageError } from '../../lib/cli/args.js';
import { proxyFlags, proxyProtocolFromFlags } from '../../lib/cli/proxyProtocol.js';
import { assertEchoes, delay, echo, handshakeErrors, nextTunnel, rejectsWithCode, Resources, until, within } from '../helpers/tunnel.js';

// ---- header bytes ------------------------------------------------------------------------------

const latin1 = (text: string) => Buffer.from(text, 'latin1');

/** A v2 header: version/command byte, family/transport byte, address block and TLVs. */
function v2(command: number, familyTransport: number, block: Buffer = Buffer.alloc(0)): Buffer {
  const len = Buffer.alloc(2);
  len.writeUInt16BE(block.length);
  return Buffer.concat([V2_SIGNATURE, Buffer.from([command, familyTransport]), len, block]);
}

function port16(port: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(port);
  return b;
}

/** The AF_INET/STREAM PROXY header for src:sport -> dst:dport. */
function v2Inet(src: number[], dst: number[], sport: number, dport: number, tlvs = Buffer.alloc(0)): Buffer {
  return v2(0x21, 0x11, Buffer.concat([Buffer.from(src), Buffer.from(dst), port16(sport), port16(dport), tlvs]));
}

function v2Inet6(src: Buffer, dst: Buffer, sport: number, dport: number): Buffer {
  return v2(0x21, 0x21, Buffer.concat([src, dst, port16(sport), port16(dport)]));
}

const LOOPBACK6 = Buffer.from('00000000000000000000000000000001', 'hex');
const DOC6 = Buffer.from('20010db8000000000000000000000007', 'hex'); // 2001:db8::7

/** Resolves when the socket has closed, by a FIN or a reset (once() would reject on the reset's 'error'). */
function closed(socket: Socket): Promise<void> {
  return new Promise((resolve) => (socket.destroyed ? resolve() : socket.once('close', () => resolve())));
}

function parseAll(bytes: Buffer, accept: 'v1' | 'v2' | 'any' = 'any') {
  return new ProxyHeaderParser(accept).push(bytes);
}

function parseError(bytes: Buffer, accept: 'v1' | 'v2' | 'any' = 'any'): string {
  try {
    const parser = new ProxyHeaderParser(accept);
    const result = parser.push(bytes);
    return result === null ? 'incomplete' : 'parsed';
  } catch (err) {
    expect(err).to.be.instanceOf(QuantumTunnelError);
    return (err as QuantumTunnelError).code;
  }
}

describe('PROXY protocol parser', () => {
  it('reads the v1 examples of the spec (TCP4, TCP6 at its longest, UNKNOWN) and returns the bytes after the line', () => {
    const tcp4 = parseAll(latin1('PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\nHELLO'))!;
    expect(tcp4.header).to.deep.equal({
      version: 1,
      command: 'proxy',
      source: { address: '255.255.255.255', port: 65535 },
      destination: { address: '255.255.255.255', port: 65535 },
    });
    expect(tcp4.rest.toString()).to.equal('HELLO');
    const f = 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff';
    const line6 = latin1(`PROXY TCP6 ${f} ${f} 65535 65535\r\n`);
    expect(line6.length).to.equal(104);
    expect(parseAll(line6)!.header.source).to.deep.equal({ address: f, port: 65535 });
    // IPv6 text comes back in its compressed form.
    expect(parseAll(latin1('PROXY TCP6 2001:0db8:0:0:0:0:0:7 ::1 1 2\r\n'))!.header.source!.address).to.equal('2001:db8::7');
    expect(parseAll(latin1('PROXY UNKNOWN\r\n'))!.header).to.deep.equal({ version: 1, command: 'proxy' });
    const unknownLongest = latin1(`PROXY UNKNOWN ${f} ${f} 65535 65535\r\n`);
    expect(unknownLongest.length).to.equal(107);
    const u = parseAll(Buffer.concat([unknownLongest, Buffer.from([0xf1])]))!;
    expect(u.header.source).to.equal(undefined);
    expect([...u.rest]).to.deep.equal([0xf1]);
  });

  it('reads v2 PROXY over AF_INET and AF_INET6, skipping TLVs, and LOCAL, AF_UNSPEC and AF_UNIX as "no address"', () => {
    const authority = Buffer.concat([Buffer.from([0x02, 0x00, 0x0b]), latin1('example.com'), Buffer.from([0x04, 0x00, 0x00])]); // PP2_TYPE_AUTHORITY, PP2_TYPE_NOOP
    const inet = parseAll(Buffer.concat([v2Inet([192, 0, 2, 1], [10, 0, 0, 1], 56324, 443, authority), latin1('rest')]))!;
    expect(inet.header).to.deep.equal({
      version: 2,
      command: 'proxy',
      source: { address: '192.0.2.1', port: 56324 },
      destination: { address: '10.0.0.1', port: 443 },
    });
    expect(inet.rest.toString()).to.equal('rest');
    const inet6 = parseAll(v2Inet6(DOC6, LOOPBACK6, 1, 65535))!;
    expect(inet6.header.source).to.deep.equal({ address: '2001:db8::7', port: 1 });
    expect(inet6.header.destination).to.deep.equal({ address: '::1', port: 65535 });
    // LOCAL ignores whatever address block follows.
    expect(parseAll(v2(0x20, 0x00))!.header).to.deep.equal({ version: 2, command: 'local' });
    expect(parseAll(v2(0x20, 0x11, Buffer.alloc(12)))!.header).to.deep.equal({ version: 2, command: 'local' });
    expect(parseAll(v2(0x20, 0xff, Buffer.alloc(3)))!.header).to.deep.equal({ version: 2, command: 'local' });
    expect(parseAll(v2(0x21, 0x00))!.header).to.deep.equal({ version: 2, command: 'proxy' });
    expect(parseAll(v2(0x21, 0x31, Buffer.alloc(216)))!.header).to.deep.equal({ version: 2, command: 'proxy' });
  });

  it('waits for every byte when they come one at a time', () => {
    for (const header of [latin1('PROXY TCP4 192.0.2.1 10.0.0.1 5 6\r\n'), v2Inet([192, 0, 2, 1], [10, 0, 0, 1], 5, 6)]) {
      const parser = new ProxyHeaderParser('any');
      for (let i = 0; i < header.length - 1; i++) expect(parser.push(header.subarray(i, i + 1)), `byte ${i}`).to.equal(null);
      const done = parser.push(header.subarray(header.length - 1))!;
      expect(done.header.source).to.deep.equal({ address: '192.0.2.1', port: 5 });
      expect(done.rest.length).to.equal(0);
    }
  });

  it('refuses malformed headers with ERR_QT_PROXY_HEADER_INVALID, as early as the bytes allow', () => {
    const bad: Array<[string, Buffer, ('v1' | 'v2' | 'any')?]> = [
      ['an HTTP request', latin1('GET / HTTP/1.1\r\n')],
      ['a bad first byte only', Buffer.from([0x16])],
      ['a wrong byte inside the v2 signature', Buffer.concat([V2_SIGNATURE.subarray(0, 7), Buffer.from([0x52])])],
      ['v2 version nibble 1', v2(0x11, 0x11, Buffer.alloc(12))],
      ['v2 command 2', v2(0x22, 0x11, Buffer.alloc(12))],
      ['a v2 length over the cap', v2(0x21, 0x11, Buffer.alloc(DEFAULT_MAX_V2_LENGTH + 1)).subarray(0, 16)],
      ['a v2 AF_INET block too short', v2(0x21, 0x11, Buffer.alloc(11))],
      ['an unknown v2 family', v2(0x21, 0x41, Buffer.alloc(12))],
      ['v2 AF_INET over DGRAM', v2(0x21, 0x12, Buffer.alloc(12))],
      ['a v2 TLV running past the block', v2Inet([1, 2, 3, 4], [5, 6, 7, 8], 1, 2, Buffer.from([0x02, 0x00, 0x09, 0x61]))],
      ['a v1 line without CRLF in 107 bytes', latin1(`PROXY UNKNOWN ${'x'.repeat(93)}`)],
      ['a CR not followed by LF', latin1('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX')],
      ['an unknown v1 protocol', latin1('PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n')],
      ['two spaces', latin1('PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n')],
      ['an IPv4 octet over 255', latin1('PROXY TCP4 256.2.3.4 5.6.7.8 1 2\r\n')],
      ['an IPv4 octet with a leading zero', latin1('PROXY TCP4 1.2.3.04 5.6.7.8 1 2\r\n')],
      ['an IPv6 address under TCP4', latin1('PROXY TCP4 ::1 5.6.7.8 1 2\r\n')],
      ['an IPv4 address under TCP6', latin1('PROXY TCP6 1.2.3.4 ::1 1 2\r\n')],
      ['an IPv6 zone', latin1('PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n')],
      ['port 70000', latin1('PROXY TCP4 1.2.3.4 5.6.7.8 70000 2\r\n')],
      ['a port with a leading zero', latin1('PROXY TCP4 1.2.3.4 5.6.7.8 080 2\r\n')],
      ['a negative port', latin1('PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n')],
      ['v2 where only v1 is accepted', v2(0x20, 0x00), 'v1'],
      ['v1 where only v2 is accepted', latin1('PROXY UNKNOWN\r\n'), 'v2'],
    ];
    for (const [what, bytes, accept] of bad) expect(parseError(bytes, accept), what).to.equal(ErrorCode.PROXY_HEADER_INVALID);
    // The longest valid v1 line is 107 bytes; 106 without CRLF is still incomplete.
    expect(parseError(latin1(`PROXY UNKNOWN ${'x'.repeat(92)}`))).to.equal('incomplete');
  });
});

describe('PROXY protocol writer (forward --send-proxy)', () => {
  it('writes headers the parser reads back: IPv4, IPv6, mixed families as IPv4-mapped IPv6, unknown', () => {
    const cases: Array<[[string | undefined, string | undefined], string | undefined, string | undefined]> = [
      [['192.0.2.1', '10.0.0.1'], '192.0.2.1', '10.0.0.1'],
      [['::ffff:192.0.2.1', '10.0.0.1'], '192.0.2.1', '10.0.0.1'],
      [['2001:DB8:0:0::7', '::1'], '2001:db8::7', '::1'],
      [['192.0.2.1', '::'], '::ffff:c000:201', '::'],
      [[undefined, '10.0.0.1'], undefined, undefined],
      [['not an address', '10.0.0.1'], undefined, undefined],
    ];
    for (const version of ['v1', 'v2'] as const) {
      for (const [[src, dst], wantSrc, wantDst] of cases) {
        const bytes = encodeProxyHeader(version, { address: src, port: 4242 }, { address: dst, port: 443 });
        const { header, rest } = new ProxyHeaderParser(version).push(bytes)!;
        const what = `${version} ${src} -> ${dst}`;
        expect(rest.length, what).to.equal(0);
        expect(header.command, what).to.equal('proxy');
        expect(header.source?.address, what).to.equal(wantSrc);
        expect(header.destination?.address, what).to.equal(wantDst);
        if (wantSrc !== undefined) expect([header.source!.port, header.destination!.port], what).to.deep.equal([4242, 443]);
      }
    }
    expect(encodeProxyHeader('v1', { address: '192.0.2.1', port: 1 }, { address: '10.0.0.1', port: 2 }).toString('latin1')).to.equal('PROXY TCP4 192.0.2.1 10.0.0.1 1 2\r\n');
    expect(encodeProxyHeader('v2', { address: '192.0.2.1', port: 1 }, { address: '10.0.0.1', port: 2 }).toString('hex'))
      .to.equal(`${V2_SIGNATURE.toString('hex')}2111000cc00002010a00000100010002`);
  });
});

// ---- a listener behind a balancer ----------------------------------------------------------------

type HeaderDelivery = 'whole' | 'byte-by-byte' | 'with-first-bytes';

/**
 * A TCP load balancer for tests: each client connection is relayed to `targetPort` from
 * `localAddress`, behind the header `headerFor(n)` (n counts connections), sent as `delivery` says.
 */
async function startBalancer(
  targetPort: number,
  headerFor: (n: number) => Buffer,
  delivery: HeaderDelivery = 'whole',
  localAddress = '127.0.0.1',
): Promise<{ port: number; server: Server; sockets: Set<Socket> }> {
  const sockets = new Set<Socket>();
  let n = 0;
  const server = createServer({ noDelay: true }, (client) => {
    const header = headerFor(n++);
    const upstream = connect({ host: '127.0.0.1', port: targetPort, localAddress, noDelay: true });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pause();
    upstream.once('connect', async () => {
      if (delivery === 'byte-by-byte') {
        for (const byte of header) {
          upstream.write(Buffer.from([byte]));
          await delay(1);
        }
      } else if (delivery === 'with-first-bytes') {
        client.resume();
        const [first] = (await once(client, 'data')) as [Buffer];
        client.pause();
        upstream.write(Buffer.concat([header, first]));
      } else {
        upstream.write(header);
      }
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as AddressInfo).port, server, sockets };
}

describe('listen({ proxyProtocol })', function () {
  this.timeout(20_000);
  const res = new Resources();
  const balancers: Array<{ server: Server; sockets: Set<Socket> }> = [];
  afterEach(async () => {
    for (const b of balancers.splice(0)) {
      for (const s of b.sockets) s.destroy();
      b.server.close();
    }
    await res.cleanup();
  });

  async function balancer(l: Listener, headerFor: (n: number) => Buffer, delivery: HeaderDelivery = 'whole', localAddress?: string) {
    const b = await startBalancer(l.address().port, headerFor, delivery, localAddress);
    balancers.push(b);
    return b.port;
  }

  const trusted = (accept: 'v1' | 'v2' | 'any' = 'any', timeoutMs?: number) => ({ proxyProtocol: { accept, trustedSources: ['127.0.0.1'], timeoutMs } });

  const cases: Array<[string, Buffer, string]> = [
    ['v1 TCP4', latin1('PROXY TCP4 203.0.113.7 127.0.0.1 4242 443\r\n'), '203.0.113.7'],
    ['v1 TCP6', latin1('PROXY TCP6 2001:db8::7 ::1 4242 443\r\n'), '2001:db8::7'],
    ['v2 AF_INET', v2Inet([203, 0, 113, 7], [127, 0, 0, 1], 4242, 443), '203.0.113.7'],
    ['v2 AF_INET6', v2Inet6(DOC6, LOOPBACK6, 4242, 443), '2001:db8::7'],
  ];
  for (const [name, header, client] of cases) {
    it(`${name}: the tunnel and its observers see the client the header names`, async () => {
      const seen: PeerAddress[] = [];
      const observer: TunnelObserver = { onHandshakeStart: (c) => void seen.push({ address: c.address, port: c.port }) };
      const listener = await res.listen({ ...trusted(), observer }, echo);
      const port = await balancer(listener, () => header);
      const serverSide = nextTunnel(listener);
      const t = await res.dial(port);
      const info = (await serverSide).info();
      expect(info.remoteAddress).to.equal(client);
      expect(info.remotePort).to.equal(4242);
      expect(info.proxiedBy?.address).to.equal('127.0.0.1');
      expect(seen).to.deep.equal([{ address: client, port: 4242 }]);
      await assertEchoes(t);
    });
  }

  it('reads a header sent one byte at a time, and one sent in the same write as the ClientHello', async () => {
    const listener = await res.listen(trusted(), echo);
    for (const delivery of ['byte-by-byte', 'with-first-bytes'] as const) {
      const port = await balancer(listener, () => latin1('PROXY TCP4 198.51.100.9 127.0.0.1 1000 443\r\n'), delivery);
      const serverSide = nextTunnel(listener);
      const t = await res.dial(port);
      expect((await serverSide).info().remoteAddress, delivery).to.equal('198.51.100.9');
      await assertEchoes(t, delivery);
    }
  });

  it('a handshake failing after the header is reported under the client, with the balancer', async () => {
    const listener = await res.listen(trusted());
    const errors = handshakeErrors(listener);
    const port = await balancer(listener, () => latin1('PROXY TCP4 192.0.2.44 127.0.0.1 4444 443\r\n'));
    const s = await res.connect(port);
    s.write(latin1('GET / HTTP/1.1\r\n\r\n'));
    await until(() => errors.length === 1, 5000, 'the failure reported');
    expect(errors[0]!.error.code).to.equal(ErrorCode.PROTOCOL_MISMATCH);
    expect([errors[0]!.remoteAddress, errors[0]!.remotePort, errors[0]!.proxiedBy?.address]).to.deep.equal(['192.0.2.44', 4444, '127.0.0.1']);
  });

  it('LOCAL (a balancer health check) and v1 UNKNOWN keep the connection\'s own address', async () => {
    const listener = await res.listen(trusted(), echo);
    for (const header of [v2(0x20, 0x00), latin1('PROXY UNKNOWN\r\n')]) {
      const port = await balancer(listener, () => header);
      const serverSide = nextTunnel(listener);
      const t = await res.dial(port);
      const info = (await serverSide).info();
      expect(info.remoteAddress).to.equal('127.0.0.1');
      expect(info.proxiedBy).to.equal(undefined);
      await assertEchoes(t);
    }
  });

  it('closes connections with malformed headers, reports them, and keeps serving others', async () => {
    const listener = await res.listen(trusted(), echo);
    const errors = handshakeErrors(listener);
    const malformed = [
      latin1('GET / HTTP/1.1\r\nHost: x\r\n\r\n'),
      v2(0x11, 0x11, Buffer.alloc(12)),
      latin1(`PROXY UNKNOWN ${'x'.repeat(120)}`),
      v2(0x21, 0x11, Buffer.alloc(DEFAULT_MAX_V2_LENGTH + 12)),
      latin1('PROXY TCP4 1.2.3.999 5.6.7.8 1 2\r\n'),
      latin1('PROXY TCP4 1.2.3.4 5.6.7.8 70000 2\r\n'),
    ];
    for (const bytes of malformed) {
      const s = await res.connect(listener.address().port);
      s.write(bytes);
      await within(closed(s), 5000, 'the listener to close a malformed header');
    }
    await until(() => errors.length === malformed.length, 5000, 'every failure reported');
    expect(errors.map((e) => e.error.code)).to.deep.equal(malformed.map(() => ErrorCode.PROXY_HEADER_INVALID));
    expect(listener.pendingHandshakes).to.equal(0);
    const port = await balancer(listener, () => latin1('PROXY TCP4 192.0.2.5 127.0.0.1 7 443\r\n'));
    await assertEchoes(await res.dial(port));
  });

  it('closes a connection that sends no header within timeoutMs (ERR_QT_PROXY_HEADER_TIMEOUT)', async () => {
    const listener = await res.listen(trusted('any', 150));
    const errors = handshakeErrors(listener);
    const s = await res.connect(listener.address().port);
    s.write(latin1('PROXY TCP4')); // half a header
    const started = Date.now();
    await within(closed(s), 3000, 'the header deadline');
    expect(Date.now() - started).to.be.lessThan(2000);
    await until(() => errors.length === 1, 2000, 'the failure reported');
    expect(errors[0]!.error.code).to.equal(ErrorCode.PROXY_HEADER_TIMEOUT);
    expect(errors[0]!.remoteAddress).to.equal('127.0.0.1');
  });

  it('close() aborts headers in progress at once', async () => {
    const listener = await res.listen(trusted('any', 30_000));
    const errors = handshakeErrors(listener);
    const s = await res.connect(listener.address().port);
    s.write(latin1('PROXY TCP4 192.0.2.'));
    await until(() => listener.pendingHandshakes === 1, 2000, 'the header in progress');
    await within(listener.close(), 2000, 'close() with a header in progress');
    await within(closed(s), 2000, 'the connection closed');
    expect(errors.map((e) => e.error.code)).to.deep.equal([ErrorCode.ABORTED]);
    expect(listener.pendingHandshakes).to.equal(0);
  });

  it('refuses connections from sources not in trustedSources, header or not', async () => {
    const listener = await res.listen({ proxyProtocol: { accept: 'any', trustedSources: ['127.0.0.2', '10.0.0.0/8'] } }, echo);
    const errors = handshakeErrors(listener);
    const s = await res.connect(listener.address().port); // from 127.0.0.1
    s.write(latin1('PROXY TCP4 192.0.2.1 127.0.0.1 1 2\r\n'));
    await within(closed(s), 5000, 'the untrusted connection to close');
    await until(() => errors.length === 1, 2000, 'the refusal reported');
    expect(errors[0]!.error.code).to.equal(ErrorCode.PROXY_SOURCE_UNTRUSTED);
    // The trusted balancer on 127.0.0.2 gets through.
    const port = await balancer(listener, () => latin1('PROXY TCP4 192.0.2.1 127.0.0.2 1 2\r\n'), 'whole', '127.0.0.2');
    const serverSide = nextTunnel(listener);
    const t = await res.dial(port);
    expect((await serverSide).info().proxiedBy?.address).to.equal('127.0.0.2');
    await assertEchoes(t);
  });

  it('rejects an option without trusted sources or with a bad one', () => {
    expect(() => listen({ proxyProtocol: { accept: 'v1', trustedSources: [] } })).to.throw(QuantumTunnelError, /trustedSources/);
    expect(() => listen({ proxyProtocol: { accept: 'v1', trustedSources: ['10.0.0.0/33'] } })).to.throw(QuantumTunnelError, /not an IP address or CIDR/);
    expect(() => listen({ proxyProtocol: { accept: 'v3' as 'v1', trustedSources: ['::1'] } })).to.throw(QuantumTunnelError, /accept/);
  });

  it('admission keys on the client the header names: two clients behind one balancer are limited separately', async () => {
    const admission = new RateLimiter({ maxConnectionsPerIp: 1 });
    const limited: PeerAddress[] = [];
    const listener = await res.listen({ ...trusted('v2'), admission, observer: { onRateLimited: (_k, p) => void limited.push(p) } }, echo);
    const clients = [[198, 51, 100, 1], [198, 51, 100, 2], [198, 51, 100, 1]];
    const port = await balancer(listener, (n) => v2Inet(clients[n]!, [127, 0, 0, 1], 5000 + n, 443));
    const first = await res.dial(port);
    const second = await res.dial(port);
    await assertEchoes(first);
    await assertEchoes(second);
    expect(admission.activeConnections('198.51.100.1')).to.equal(1);
    expect(admission.activeConnections('198.51.100.2')).to.equal(1);
    expect(admission.activeConnections('127.0.0.1')).to.equal(0);
    await rejectsWithCode(res.dial(port), ErrorCode.CONNECTION_FAILED);
    expect(limited).to.deep.equal([{ address: '198.51.100.1', port: 5002 }]);
  });

  it('counts header reading against the pending-handshake caps of the balancer\'s address', async () => {
    const limited: string[] = [];
    const listener = await res.listen({ ...trusted(), maxPendingHandshakesPerAddress: 2, observer: { onRateLimited: (k) => void limited.push(k) } });
    const half = [];
    for (let i = 0; i < 2; i++) {
      const s = await res.connect(listener.address().port);
      s.write(latin1('PROXY TCP4 192.0.2.'));
      half.push(s);
    }
    await until(() => listener.pendingHandshakes === 2, 2000, 'two headers in progress');
    const third = await res.connect(listener.address().port);
    await within(closed(third), 2000, 'the third connection refused');
    expect(limited).to.deep.equal(['pending-handshakes']);
    // A finished header frees the balancer's place: the client's handshake is counted under its own address.
    half[0]!.write(latin1('1 127.0.0.1 1 2\r\n'));
    await delay(50);
    const fourth = await res.connect(listener.address().port);
    fourth.write(latin1('PROXY TCP4 192.0.2.'));
    await until(() => listener.pendingHandshakes === 3, 2000, 'the fourth header in progress');
    expect(limited).to.have.length(1);
  });
});

describe('quantum-vpn forward --proxy-protocol', function () {
  this.timeout(60_000);
  const res = new Resources();
  const cleanup: Array<() => void> = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0)) c();
    await killAll();
    await res.cleanup();
  });

  it('logs the client the balancer names, passes it on to the service (--send-proxy), and refuses connections that bypass the balancer', async () => {
    // The service reads the header forward sends, then echoes.
    const received: ProxyHeader[] = [];
    const service = await res.rawServer((s) => {
      const parser = new ProxyHeaderParser('v2');
      const onData = (chunk: Buffer) => {
        const found = parser.push(chunk);
        if (found === null) return;
        received.push(found.header);
        s.off('data', onData);
        s.write(found.rest);
        s.pipe(s);
      };
      s.on('data', onData);
    });
    const fserver = startCli(['forward', '--no-auth', '--listen', '127.0.0.1:0', '--to', `127.0.0.1:${service.port}`, '--log-level', 'info',
      '--proxy-protocol', 'v1', '--proxy-from', '127.0.0.1,10.0.0.0/8', '--send-proxy', 'v2']);
    const tunnelPort = await fserver.listeningPort();
    const b = await startBalancer(tunnelPort, () => latin1('PROXY TCP4 203.0.113.7 127.0.0.1 4242 443\r\n'));
    cleanup.push(() => {
      for (const s of b.sockets) s.destroy();
      b.server.close();
    });
    await assertEchoes(await res.dial(b.port));
    await fserver.waitFor(/INFO +connection opened .*peer=203\.0\.113\.x:4242/, 20_000, 'stderr');
    expect(received).to.deep.equal([{ version: 2, command: 'proxy', source: { address: '203.0.113.7', port: 4242 }, destination: { address: '127.0.0.1', port: tunnelPort } }]);
    // Straight from 127.0.0.2, not a trusted balancer: refused before any header is read.
    const direct = res.socket(connect({ host: '127.0.0.1', port: tunnelPort, localAddress: '127.0.0.2' }));
    direct.write(latin1('PROXY TCP4 192.0.2.1 127.0.0.1 1 2\r\n'));
    await within(closed(direct), 5000, 'the bypassing connection closed');
    await fserver.waitFor(/WARN +handshake failed .*error=ERR_QT_PROXY_SOURCE_UNTRUSTED/, 20_000, 'stderr');
  });

  it('refuses --proxy-protocol without --proxy-from, --proxy-from alone, and bad values of the three flags (usage errors)', () => {
    expect(proxyProtocolFromFlags({})).to.equal(undefined);
    expect(proxyProtocolFromFlags({ 'proxy-protocol': 'v2', 'proxy-from': '127.0.0.1, 10.0.0.0/8' })).to.deep.equal({ accept: 'v2', trustedSources: ['127.0.0.1', '10.0.0.0/8'] });
    const cases: Array<[FlagValues, RegExp]> = [
      [{ 'proxy-protocol': 'v1' }, /--proxy-protocol needs --proxy-from/],
      [{ 'proxy-from': '10.0.0.1' }, /--proxy-from needs --proxy-protocol/],
      [{ 'proxy-protocol': 'v3', 'proxy-from': '10.0.0.1' }, /invalid --proxy-protocol "v3"/],
      [{ 'proxy-protocol': 'any', 'proxy-from': '10.0.0.0/40' }, /invalid --proxy-from: "10\.0\.0\.0\/40" is not an IP address or CIDR block/],
      [{ 'proxy-protocol': 'any', 'proxy-from': '10.0.0.1,' }, /invalid --proxy-from: "" is not/],
      [{ 'send-proxy': 'v3' }, /invalid --send-proxy "v3": expected v1 or v2/],
    ];
    for (const [flags, message] of cases) expect(() => proxyFlags(flags), JSON.stringify(flags)).to.throw(UsageError, message);
    expect(proxyFlags({ 'send-proxy': 'v1' })).to.deep.equal({ listen: undefined, send: 'v1' });
  });
});
