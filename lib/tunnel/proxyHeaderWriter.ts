/**
 * Writes PROXY protocol headers (the sending side of proxyProtocol.ts): what a forwarder puts in
 * front of a connection to a service so the service sees the client, as stunnel's
 * `protocol = proxy` and HAProxy's `send-proxy` do.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { V2_SIGNATURE } from './proxyProtocol.js';

/** One end of the connection; an address that is undefined or no IP address makes the header say "unknown". */
export interface ProxyHeaderEndpoint {
  address: string | undefined;
  port: number | undefined;
}

/**
 * The header for a connection from `source` to `destination`: v1 text or v2 binary. Both ends are
 * written in one family: IPv4 when both are IPv4 (or IPv4-mapped IPv6), else IPv6 with IPv4
 * mapped. Without both addresses it is v1 `UNKNOWN` or v2 PROXY with AF_UNSPEC.
 */
export function encodeProxyHeader(version: 'v1' | 'v2', source: ProxyHeaderEndpoint, destination: ProxyHeaderEndpoint): Buffer {
  const src = unmapped(source.address);
  const dst = unmapped(destination.address);
  if (src === undefined || dst === undefined) {
    return version === 'v1' ? Buffer.from('PROXY UNKNOWN\r\n', 'latin1') : v2Header(0x00, Buffer.alloc(0));
  }
  const v4 = isIPv4(src) && isIPv4(dst);
  const [a, b] = v4 ? [src, dst] : [mapped(src), mapped(dst)];
  const sport = source.port ?? 0;
  const dport = destination.port ?? 0;
  if (version === 'v1') return Buffer.from(`PROXY ${v4 ? 'TCP4' : 'TCP6'} ${a} ${b} ${sport} ${dport}\r\n`, 'latin1');
  const ports = Buffer.alloc(4);
  ports.writeUInt16BE(sport, 0);
  ports.writeUInt16BE(dport, 2);
  const bytes = v4 ? ipv4Bytes : ipv6Bytes;
  return v2Header(v4 ? 0x11 : 0x21, Buffer.concat([bytes(a), bytes(b), ports]));
}

/** Signature, PROXY command, family/transport, length, block. */
function v2Header(familyTransport: number, block: Buffer): Buffer {
  const fixed = Buffer.from([0x21, familyTransport, block.length >> 8, block.length & 0xff]);
  return Buffer.concat([V2_SIGNATURE, fixed, block]);
}

/** An IP address in its canonical form (IPv4-mapped IPv6 as IPv4), or undefined for anything else. */
function unmapped(address: string | undefined): string | undefined {
  if (address === undefined) return undefined;
  if (isIPv4(address)) return address;
  if (!isIPv6(address) || address.includes('%')) return undefined;
  const canonical = new URL(`http://[${address}]/`).hostname.slice(1, -1);
  const m = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(canonical);
  if (m === null) return canonical;
  const hi = parseInt(m[1]!, 16);
  const lo = parseInt(m[2]!, 16);
  return `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
}

function mapped(address: string): string {
  return isIPv4(address) ? `::ffff:${address}` : address;
}

function ipv4Bytes(address: string): Buffer {
  return Buffer.from(address.split('.').map(Number));
}

/** 16 bytes of an IPv6 address (URL parsing leaves hex groups and at most one "::"). */
function ipv6Bytes(address: string): Buffer {
  const [head = '', tail] = new URL(`http://[${address}]/`).hostname.slice(1, -1).split('::');
  const groups = (part: string | undefined) => (part ? part.split(':').map((g) => parseInt(g, 16)) : []);
  const h = groups(head);
  const t = groups(tail);
  const all = tail === undefined ? h : [...h, ...Array<number>(8 - h.length - t.length).fill(0), ...t];
  const out = Buffer.alloc(16);
  all.forEach((g, i) => out.writeUInt16BE(g, i * 2));
  return out;
}
