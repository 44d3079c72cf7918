/**
 * The peers benchmarks compare quantum-tunnel with, shared by `quantum-vpn bench` and
 * bench/tunnel.bench.ts: Node's own TLS 1.3 (with a throwaway ECDSA P-256 certificate, the suite
 * forced on both ends and checked after every handshake), and the Go reference's driver
 * (QUANTUM_GO_BIN: Quantum-Go's client against its own server, in processes of their own).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import * as tls from 'node:tls';
import type { CipherName } from '../tunnel/options.js';

// ---- certificate --------------------------------------------------------------------------------

/** One DER element: tag, definite length, contents. */
function der(tag: number, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  const n = body.length;
  const len = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff];
  return Buffer.concat([Buffer.from([tag, ...len]), body]);
}

const seq = (...parts: Buffer[]) => der(0x30, ...parts);
const oid = (hex: string) => der(0x06, Buffer.from(hex, 'hex'));
const utcTime = (d: Date) => der(0x17, Buffer.from(`${d.toISOString().slice(2, 19).replace(/[-T:]/g, '')}Z`));

/** TLS credentials in PEM: the certificate also serves as its own trust anchor (`ca`). */
export interface TlsCredentials {
  key: string;
  cert: string;
}

/**
 * A self-signed ECDSA P-256 certificate for `localhost` and 127.0.0.1, valid for a day, built with
 * node:crypto alone (our own X.509 issuer signs with ML-DSA-87 and P-384 only, and the common TLS
 * deployment, which is what we compare with, signs with P-256).
 */
export function selfSignedP256(): TlsCredentials {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const ecdsaSha256 = seq(oid('2a8648ce3d040302'));
  const name = seq(der(0x31, seq(oid('550403'), der(0x0c, Buffer.from('localhost')))));
  const now = Date.now();
  const extensions = der(0xa3, seq(
    // basicConstraints cA, critical: the certificate is its own trust anchor.
    seq(oid('551d13'), der(0x01, Buffer.from([0xff])), der(0x04, seq(der(0x01, Buffer.from([0xff]))))),
    // subjectAltName: dNSName localhost, iPAddress 127.0.0.1.
    seq(oid('551d11'), der(0x04, seq(der(0x82, Buffer.from('localhost')), der(0x87, Buffer.from([127, 0, 0, 1]))))),
  ));
  const tbs = seq(
    der(0xa0, der(0x02, Buffer.from([2]))),
    der(0x02, Buffer.concat([Buffer.from([0x01]), randomBytes(15)])),
    ecdsaSha256,
    name,
    seq(utcTime(new Date(now - 60_000)), utcTime(new Date(now + 86_400_000))),
    name,
    publicKey.export({ type: 'spki', format: 'der' }),
    extensions,
  );
  const signature = sign('sha256', tbs, privateKey);
  const certDer = seq(tbs, ecdsaSha256, der(0x03, Buffer.from([0]), signature));
  const lines = certDer.toString('base64').match(/.{1,64}/g)!;
  return {
    key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    cert: `-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----\n`,
  };
}

// ---- node:tls -----------------------------------------------------------------------------------

/**
 * The TLS 1.3 suite of each of our ciphers. Node selects TLS 1.3 suites through `ciphers` (a
 * `ciphersuites` option is silently ignored), so both ends set `ciphers` to this one suite.
 */
export const TLS13_SUITES: Readonly<Record<CipherName, string>> = Object.freeze({
  'aes-256-gcm': 'TLS_AES_256_GCM_SHA384',
  'chacha20-poly1305': 'TLS_CHACHA20_POLY1305_SHA256',
});

/** What a TLS handshake negotiated. */
export interface TlsNegotiated {
  /** The IANA suite name, e.g. `TLS_AES_256_GCM_SHA384`. */
  suite: string;
  /** The key exchange group as OpenSSL names it, e.g. `X25519MLKEM768` or `X25519`. */
  group: string;
  /** True when the group includes ML-KEM (TLS-PQ). */
  postQuantum: boolean;
}

/** Reads the suite and group of an established TLS socket; throws unless the suite is `suite`. */
export function checkTlsSocket(socket: tls.TLSSocket, suite: string): TlsNegotiated {
  const cipher = socket.getCipher();
  const negotiated = cipher.standardName ?? cipher.name;
  if (negotiated !== suite) throw new Error(`node:tls negotiated ${negotiated} (${cipher.version}), expected ${suite}`);
  if (cipher.version !== 'TLSv1.3') throw new Error(`node:tls negotiated ${cipher.version}, expected TLSv1.3`);
  const group = (socket.getEphemeralKeyInfo() as { name?: string } | null)?.name ?? 'unknown';
  return { suite: negotiated, group, postQuantum: /MLKEM/i.test(group) };
}

/** A node:tls 1.3 server on 127.0.0.1 and the matching client. */
export interface TlsPeer {
  port: number;
  /** The suite both ends are limited to. */
  suite: string;
  /** Connects (to `port`, default the server's own) and completes the handshake, checking the suite. */
  connect(port?: number): Promise<tls.TLSSocket>;
  /** What the last handshake negotiated (undefined before the first). */
  negotiated(): TlsNegotiated | undefined;
  close(): Promise<void>;
}

/** Options of {@link tlsPeer}. */
export interface TlsPeerOptions {
  credentials: TlsCredentials;
  /** Our cipher name; TLS uses the matching TLS 1.3 suite only. */
  cipher: CipherName;
  /** Called with each server-side socket. */
  onStream: (socket: tls.TLSSocket) => void;
  /** Trust anchor when the certificate is not self-signed (default: the certificate itself). */
  ca?: string;
  /** The client authenticates with the same credentials too. */
  mutual?: boolean;
}

/**
 * Starts a node:tls 1.3 server limited to one suite. Key exchange groups are Node's defaults
 * (X25519MLKEM768 first from Node 24; X25519 on Node 20): {@link TlsPeer.negotiated} says which.
 */
export async function tlsPeer(options: TlsPeerOptions): Promise<TlsPeer> {
  const { credentials: creds, mutual = false } = options;
  const suite = TLS13_SUITES[options.cipher];
  const ca = options.ca ?? creds.cert;
  const server = tls.createServer(
    { key: creds.key, cert: creds.cert, minVersion: 'TLSv1.3', ciphers: suite, ...(mutual ? { requestCert: true, rejectUnauthorized: true, ca } : {}) },
    options.onStream,
  );
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  let last: TlsNegotiated | undefined;
  return {
    port,
    suite,
    negotiated: () => last,
    connect: (to = port) =>
      new Promise((resolve, reject) => {
        const s = tls.connect(
          {
            host: '127.0.0.1', port: to, ca, servername: 'localhost', minVersion: 'TLSv1.3', ciphers: suite,
            // A certificate from another issuer (the ML-DSA-87 rows) names no host: trust the chain only.
            ...(options.ca ? { checkServerIdentity: () => undefined } : {}),
            ...(mutual ? { key: creds.key, cert: creds.cert } : {}),
          },
          () => {
            try {
              last = checkTlsSocket(s, suite);
              resolve(s);
            } catch (e) {
              s.destroy();
              reject(e instanceof Error ? e : new Error(String(e)));
            }
          },
        );
        s.once('error', reject);
      }),
    close: () => new Promise((r) => server.close(() => r())),
  };
}

// ---- the Go reference ---------------------------------------------------------------------------

/** The Go reference's largest bulk run: its transfers stall at its 1 GiB rekey point. */
export const GO_MAX_BULK_BYTES = 2 ** 29;

/** The Go reference's driver: its own client against its own `sink` server. */
export interface GoPeer {
  /** The driver's path (QUANTUM_GO_BIN). */
  bin: string;
  /** Handshakes/s of `n` Dial+Close, `concurrency` at once; NaN if the run failed. */
  handshakes(n: number, concurrency: number): number;
  /** MB/s (10^6 bytes) of one stream of `bytes` in `chunk`-byte writes; NaN if the run failed or stalled. */
  throughput(bytes: number, chunk: number): number;
  close(): void;
}

/**
 * Starts the Go reference's `sink` server, or returns undefined when QUANTUM_GO_BIN is not set.
 * The driver (built outside this repository; test/interop/go-v1.test.ts documents it) offers no
 * choice of suite: its client and server negotiate AES-256-GCM, so it has no ChaCha20 figure.
 */
export async function goPeer(bin = process.env.QUANTUM_GO_BIN): Promise<GoPeer | undefined> {
  if (!bin) return undefined;
  const server: ChildProcess = spawn(bin, ['sink', '-addr', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'ignore'] });
  let addr: string;
  try {
    // The first line it prints (which may come in several chunks) names its port.
    const first = await new Promise<string>((resolve, reject) => {
      let text = '';
      server.once('error', reject);
      server.once('exit', (code) => reject(new Error(`the Go driver ${bin} exited (${code}) before listening`)));
      server.stdout!.on('data', (d: Buffer) => {
        text += d.toString();
        const end = text.indexOf('\n');
        if (end >= 0) resolve(text.slice(0, end));
      });
    });
    addr = `127.0.0.1:${(JSON.parse(first) as { port: string }).port}`;
  } catch (err) {
    server.kill(); // never left running behind a failed start
    throw err;
  } finally {
    server.removeAllListeners('exit');
    server.stdout!.removeAllListeners('data');
    server.stdout!.resume(); // later output must not fill the pipe
  }
  // The Go client runs in its own process while this one waits, so it adds no load here.
  const run = (args: string[]): { perSecond?: number; MiBps?: number } | undefined => {
    try {
      return JSON.parse(execFileSync(bin, [args[0]!, '-addr', addr, ...args.slice(1)], { encoding: 'utf8', timeout: 120_000 }).trim()) as { perSecond?: number; MiBps?: number };
    } catch {
      return undefined;
    }
  };
  return {
    bin,
    handshakes: (n, c) => run(['bench-hs', '-n', String(n), '-c', String(c)])?.perSecond ?? Number.NaN,
    throughput: (bytes, chunk) => {
      const mib = run(['bench-tp', '-bytes', String(Math.min(bytes, GO_MAX_BULK_BYTES)), '-chunk', String(chunk)])?.MiBps;
      return mib === undefined ? Number.NaN : (mib * 2 ** 20) / 1e6;
    },
    close: () => void server.kill(),
  };
}

