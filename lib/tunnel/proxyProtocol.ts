/**
 * The PROXY protocol (HAProxy, https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt): the
 * header a TCP load balancer puts in front of a connection to say which client it carries. This
 * module only reads headers, from bytes that may arrive one at a time; the listener decides whom
 * it believes (listener.ts).
 */
import { isIPv4, isIPv6 } from 'node:net';
import { ErrorCode, qtError } from '../errors.js';

/** Which header versions a listener accepts. */
export type ProxyProtocolVersion = 'v1' | 'v2' | 'any';

/** One end of the proxied connection. */
export interface ProxyEndpoint {
  address: string;
  port: number;
}

/** A complete header. */
export interface ProxyHeader {
  version: 1 | 2;
  /**
   * `proxy`: the balancer relays a client, whose address is `source` (undefined when the header
   * carries none: v1 UNKNOWN, v2 AF_UNSPEC or AF_UNIX). `local`: the balancer speaks for itself
   * (a health check); use the connection's own address.
   */
  command: 'proxy' | 'local';
  source?: ProxyEndpoint;
  destination?: ProxyEndpoint;
}

/** v1: "PROXY " starts the line; the whole line is at most 107 bytes with its CRLF. */
const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
export const V1_MAX_LENGTH = 107;
/** v2: a 12-byte signature, then version/command, family/transport and a 16-bit length. */
export const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V2_FIXED = 16;
/**
 * The longest v2 address-and-TLV block accepted by default. The protocol allows 65,535 bytes;
 * real balancers send a few hundred (AF_UNIX addresses are 216), and every byte of it is memory a
 * connection holds before anyone knows who it is.
 */
export const DEFAULT_MAX_V2_LENGTH = 4096;

const AF_UNSPEC = 0x0;
const AF_INET = 0x1;
const AF_INET6 = 0x2;
const AF_UNIX = 0x3;
const STREAM = 0x1;
/** Address block sizes of AF_INET, AF_INET6 and AF_UNIX. */
const ADDRESS_LENGTH: Record<number, number> = { [AF_INET]: 12, [AF_INET6]: 36, [AF_UNIX]: 216 };

function invalid(reason: string): never {
  throw qtError(ErrorCode.PROXY_HEADER_INVALID, `invalid PROXY protocol header: ${reason}`);
}

/**
 * Reads one PROXY protocol header from a connection's first bytes. Feed it each chunk with
 * {@link ProxyHeaderParser.push} until it returns the header; the bytes that came after the header
 * (the start of the tunnel handshake) come back with it. Throws ERR_QT_PROXY_HEADER_INVALID as
 * soon as the bytes cannot be a valid header, so garbage is refused early; it never holds more
 * than 107 bytes (v1) or 16 + `maxV2Length` bytes (v2) plus the last chunk.
 */
export class ProxyHeaderParser {
  private buffered: Buffer = Buffer.alloc(0);
  private done = false;

  constructor(
    private readonly accept: ProxyProtocolVersion = 'any',
    private readonly maxV2Length = DEFAULT_MAX_V2_LENGTH,
  ) {}

  /** Adds bytes; returns the header and the bytes after it once it is complete, else null. */
  push(chunk: Buffer): { header: ProxyHeader; rest: Buffer } | null {
    if (this.done) throw qtError(ErrorCode.INVALID_STATE, 'the PROXY header was already read');
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    const bytes = this.buffered;
    const v1 = this.accept !== 'v2' && startsLike(bytes, V1_PREFIX);
    const v2 = this.accept !== 'v1' && startsLike(bytes, V2_SIGNATURE);
    if (!v1 && !v2) invalid(`no ${this.accept === 'any' ? 'v1 or v2' : this.accept} signature`);
    const found = v1 ? parseV1(bytes) : parseV2(bytes, this.maxV2Length);
    if (found === null) return null;
    this.done = true;
    this.buffered = Buffer.alloc(0);
    return { header: found.header, rest: bytes.subarray(found.length) };
  }
}

/** The bytes so far agree with `prefix` (as far as they go). */
function startsLike(bytes: Buffer, prefix: Buffer): boolean {
  const n = Math.min(bytes.length, prefix.length);
  return bytes.subarray(0, n).equals(prefix.subarray(0, n));
}

/** A v1 line: `PROXY TCP4|TCP6 src dst sport dport\r\n` or `PROXY UNKNOWN[ anything]\r\n`. */
function parseV1(bytes: Buffer): { header: ProxyHeader; length: number } | null {
  const window = bytes.subarray(0, V1_MAX_LENGTH);
  const cr = window.indexOf(0x0d);
  if (cr === -1 || cr === window.length - 1) {
    if (window.length >= V1_MAX_LENGTH) invalid(`v1 line longer than ${V1_MAX_LENGTH} bytes`);
    return null;
  }
  if (window[cr + 1] !== 0x0a) invalid('v1 line not ended by CRLF');
  const length = cr + 2;
  const line = window.subarray(0, cr).toString('latin1');
  const fields = line.split(' ');
  if (fields[1] === 'UNKNOWN') return { header: { version: 1, command: 'proxy' }, length }; // the rest is ignored (spec 2.1)
  if (fields.length !== 6) invalid('v1 line must have 6 fields separated by single spaces');
  const [, protocol, src, dst, sport, dport] = fields as [string, string, string, string, string, string];
  if (protocol !== 'TCP4' && protocol !== 'TCP6') invalid(`unknown v1 protocol ${JSON.stringify(protocol.slice(0, 16))}`);
  const address = protocol === 'TCP4' ? ipv4Text : ipv6Text;
  return {
    header: {
      version: 1,
      command: 'proxy',
      source: { address: address(src), port: portText(sport) },
      destination: { address: address(dst), port: portText(dport) },
    },
    length,
  };
}

/** Dotted decimal, four numbers 0-255 without leading zeros (which some parsers read as octal). */
function ipv4Text(text: string): string {
  if (!isIPv4(text) || text.split('.').some((n) => n.length > 1 && n.startsWith('0'))) invalid('bad IPv4 address in v1 line');
  return text;
}

function ipv6Text(text: string): string {
  if (!isIPv6(text) || text.includes('%')) invalid('bad IPv6 address in v1 line');
  return new URL(`http://[${text}]/`).hostname.slice(1, -1); // the compressed form (RFC 5952)
}

function portText(text: string): number {
  if (!/^(0|[1-9][0-9]{0,4})$/.test(text) || Number(text) > 65535) invalid('bad port in v1 line');
  return Number(text);
}

/** A v2 header: fixed part, then an address block for its family and TLVs (skipped, but checked to be well formed). */
function parseV2(bytes: Buffer, maxLength: number): { header: ProxyHeader; length: number } | null {
  if (bytes.length < V2_FIXED) return null;
  const versionCommand = bytes[12]!;
  if (versionCommand >> 4 !== 2) invalid(`v2 version nibble is ${versionCommand >> 4}, not 2`);
  const command = versionCommand & 0x0f;
  if (command > 1) invalid(`unknown v2 command ${command}`);
  const family = bytes[13]! >> 4;
  const transport = bytes[13]! & 0x0f;
  const blockLength = bytes.readUInt16BE(14);
  if (blockLength > maxLength) invalid(`v2 header of ${blockLength} bytes exceeds the ${maxLength}-byte limit`);
  if (bytes.length < V2_FIXED + blockLength) return null;
  const block = bytes.subarray(V2_FIXED, V2_FIXED + blockLength);
  const length = V2_FIXED + blockLength;
  // LOCAL: the balancer's own connection (a health check); family and block are ignored (spec 2.2).
  if (command === 0) return { header: { version: 2, command: 'local' }, length };
  if (family > AF_UNIX || transport > 2) invalid('unknown v2 address family or transport');
  const addressLength = ADDRESS_LENGTH[family] ?? 0;
  if (blockLength < addressLength) invalid('v2 address block shorter than its family needs');
  checkTlvs(block.subarray(addressLength));
  if (family === AF_UNSPEC || family === AF_UNIX) return { header: { version: 2, command: 'proxy' }, length };
  if (transport !== STREAM) invalid('v2 header for a non-stream transport');
  const header: ProxyHeader = family === AF_INET
    ? {
      version: 2,
      command: 'proxy',
      source: { address: ipv4Bytes(block.subarray(0, 4)), port: block.readUInt16BE(8) },
      destination: { address: ipv4Bytes(block.subarray(4, 8)), port: block.readUInt16BE(10) },
    }
    : {
      version: 2,
      command: 'proxy',
      source: { address: ipv6Bytes(block.subarray(0, 16)), port: block.readUInt16BE(32) },
      destination: { address: ipv6Bytes(block.subarray(16, 32)), port: block.readUInt16BE(34) },
    };
  return { header, length };
}

/** TLVs are type (1 byte), length (2 bytes) and value; each must fit in the block. */
function checkTlvs(tlvs: Buffer): void {
  let at = 0;
  while (at < tlvs.length) {
    if (at + 3 > tlvs.length || at + 3 + tlvs.readUInt16BE(at + 1) > tlvs.length) invalid('v2 TLV overruns the header');
    at += 3 + tlvs.readUInt16BE(at + 1);
  }
}

function ipv4Bytes(b: Buffer): string {
  return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
}

function ipv6Bytes(b: Buffer): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
  return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
}
