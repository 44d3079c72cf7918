/**
 * Fuzz targets: every parser and handshake state machine that reads a peer's or a file's bytes.
 * The rule each target checks is the one docs/SECURITY.md states: whatever the input, only a
 * QuantumTunnelError comes out (a TypeError, a RangeError, a crash or a hang is a finding).
 *
 * `npm run fuzz` runs these under Jazzer.js (scripts/fuzz.cjs); test/fuzz/corpus.test.ts runs
 * every seed and every past finding through them in the normal suite.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../lib/config/load.js';
import { formatIssue } from '../lib/config/source.js';
import { QuantumTunnelError } from '../lib/errors.js';
import { decodeAlert, decodeClientHello, decodeFinished, decodeRekeyPayload, decodeServerHello } from '../lib/protocol/messages.js';
import { MessageType } from '../lib/protocol/constants.js';
import { FrameReader, type Frame } from '../lib/protocol/frame.js';
import { decodeClientHelloV2, decodeExtensionList, decodeServerHelloV2 } from '../lib/protocol/v2/messages.js';
import { decodeNewSessionTicket, TicketIssuer } from '../lib/protocol/v2/tickets.js';
import { decodeClientKeyAuth, decodeServerKeyAuth } from '../lib/protocol/v2/keyAuth.js';
import { decodeCertificateAuth, decodeCertificateBody } from '../lib/protocol/v2/certAuth.js';
import type { Handshake, HandshakeStep } from '../lib/protocol/handshake.js';
import { responderVersion, V1, V2, type ResponderConfig } from '../lib/protocol/versions.js';
import { IdentityKey, parsePublicKeyLine } from '../lib/identity/keys.js';
import { decodeIdentityKeyFile } from '../lib/identity/keyFile.js';
import { parseCertificates } from '../lib/crypto/x509.js';
import { randomSecret } from '../lib/crypto/random.js';
import { resolveGroups, resolveListenAuth, resolveListenPsk, resolveOffload, resolveSuites, type ListenOptions } from '../lib/tunnel/options.js';

/** Runs `body`; a QuantumTunnelError is the expected refusal, anything else is rethrown (a finding). */
async function refusesTyped(body: () => unknown): Promise<void> {
  try {
    await body();
  } catch (e) {
    if (!(e instanceof QuantumTunnelError)) throw e;
  }
}

/** The same for synchronous targets. */
export function refusesTypedSync(body: () => unknown): void {
  try {
    body();
  } catch (e) {
    if (!(e instanceof QuantumTunnelError)) throw e;
  }
}

/**
 * Cuts `data` into socket-read-sized chunks, the sizes taken from its first byte, so the reader
 * meets frames split at every place.
 */
function chunks(data: Buffer): Buffer[] {
  if (data.length === 0) return [];
  const step = (data[0]! % 17) + 1;
  const out: Buffer[] = [];
  for (let o = 1; o < data.length; o += step) out.push(data.subarray(o, o + step));
  return out;
}

/** FrameReader over arbitrary chunking: frames, split frames (v2's splitAt) and handshake records. */
export function frames(data: Buffer): void {
  refusesTypedSync(() => {
    const reader = new FrameReader();
    const splitAt = data.length > 0 && data[0]! & 0x80 ? 2 : undefined;
    const records = data.length > 0 && (data[0]! & 0x40) !== 0;
    for (const chunk of chunks(data)) {
      reader.push(Buffer.from(chunk));
      for (;;) {
        const next = records ? reader.nextHandshakeRecord() : reader.nextFrame(splitAt);
        if (next === null) break;
      }
    }
  });
}

/** Every message decoder of both versions, chosen by the first byte. */
export function messages(data: Buffer): void {
  if (data.length === 0) return;
  const body = data.subarray(1);
  const decoders: Array<(b: Buffer) => unknown> = [
    decodeClientHello,
    decodeServerHello,
    (b) => decodeFinished(b, MessageType.CLIENT_FINISHED),
    decodeAlert,
    decodeRekeyPayload,
    decodeClientHelloV2,
    decodeServerHelloV2,
    (b) => decodeExtensionList(b, 'fuzz'),
    decodeNewSessionTicket,
    decodeClientKeyAuth,
    decodeServerKeyAuth,
    decodeCertificateAuth,
    decodeCertificateBody,
  ];
  refusesTypedSync(() => decoders[data[0]! % decoders.length]!(Buffer.from(body)));
}

// ---- handshakes --------------------------------------------------------------------------------

let configs: ResponderConfig[] | undefined;

/** The listener's configurations the responder runs under: anonymous, PSK, pinned keys, tickets. */
function responderConfigs(): ResponderConfig[] {
  if (configs) return configs;
  const of = (options: ListenOptions): ResponderConfig => ({
    cipherSuites: resolveSuites(options.ciphers),
    groups: resolveGroups(options.groups),
    psk: resolveListenPsk(options),
    ...resolveListenAuth(options),
    offloadCrypto: resolveOffload(false),
  });
  const serverKey = IdentityKey.generate();
  const clientKey = IdentityKey.generate();
  const psk = randomSecret(32);
  configs = [
    { ...of({}), ticketOpener: new TicketIssuer({ serverIdentity: Buffer.from('fuzz') }) },
    of({ psk: { identity: 'fuzz', secret: psk } }),
    of({ identity: serverKey, authorizedPeers: [clientKey.publicKey] }),
    of({ groups: ['x25519-mlkem768', 'p384-mlkem1024'] }),
  ];
  return configs;
}

/** Feeds `reader`'s frames and records to `hs` as the driver would, until it wants more bytes. */
async function drive(hs: Handshake, reader: FrameReader, first?: Frame): Promise<void> {
  try {
    let step: HandshakeStep = await hs.start();
    let pending = first;
    while (step.next !== 'done') {
      let input: Frame | Buffer | null;
      if (step.next === 'record') input = reader.nextHandshakeRecord();
      else if (pending !== undefined) [input, pending] = [pending, undefined];
      else input = reader.nextFrame();
      if (input === null) return;
      step = await hs.receive(input);
    }
  } finally {
    hs.destroy();
  }
}

/** A server's handshake (either version, by the hello's major version) reading a client's bytes. */
export async function responder(data: Buffer): Promise<void> {
  if (data.length === 0) return;
  const config = responderConfigs()[data[0]! % responderConfigs().length]!;
  await refusesTyped(async () => {
    const reader = new FrameReader();
    reader.push(Buffer.from(data.subarray(1)));
    const hello = reader.nextFrame();
    if (hello === null) return;
    await drive(responderVersion(hello, true).responder(config), reader, hello);
  });
}

/** A client's handshake (v2, or v1 when the first byte is odd) reading a server's bytes. */
export async function initiator(data: Buffer): Promise<void> {
  if (data.length === 0) return;
  await refusesTyped(async () => {
    const config = { cipherSuites: resolveSuites(undefined), groups: resolveGroups(undefined), offloadCrypto: resolveOffload(false) };
    const hs = await (data[0]! & 1 ? V1 : V2).initiator(config);
    const reader = new FrameReader();
    reader.push(Buffer.from(data.subarray(1)));
    await drive(hs, reader);
  });
}

// ---- identity files and certificates -----------------------------------------------------------

/** Public key lines, identity key files (with and without a passphrase) and certificates. */
export function identities(data: Buffer): void {
  if (data.length === 0) return;
  const body = Buffer.from(data.subarray(1));
  switch (data[0]! % 4) {
    case 0:
      return refusesTypedSync(() => parsePublicKeyLine(body.toString('utf8')));
    case 1:
      return refusesTypedSync(() => decodeIdentityKeyFile(body).destroy());
    case 2:
      return refusesTypedSync(() => decodeIdentityKeyFile(body, { passphrase: Buffer.from('fuzz') }).destroy());
    default:
      return refusesTypedSync(() => parseCertificates(body));
  }
}

// ---- configuration files -----------------------------------------------------------------------

let configDir: string | undefined;

/**
 * A configuration file (`quantum-vpn serve --config`), YAML or TOML by the first byte, through
 * the whole loader: parsing, the environment overrides' merge, the schema and each service's
 * flags. Every problem must come back as an issue that formats: loadConfig throws nothing at all.
 */
export function config(data: Buffer): void {
  if (data.length === 0) return;
  if (configDir === undefined) {
    const dir = mkdtempSync(join(tmpdir(), 'qt-fuzz-config-'));
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    configDir = dir;
  }
  const file = join(configDir, data[0]! % 2 === 0 ? 'fuzz.yaml' : 'fuzz.toml');
  writeFileSync(file, data.subarray(1));
  const result = loadConfig(file, {});
  if (!result.ok) for (const issue of result.issues) formatIssue(issue);
}

/** The targets by name (scripts/fuzz.cjs and test/fuzz/corpus.test.ts). */
export const TARGETS = { frames, messages, responder, initiator, identities, config } as const;
export type TargetName = keyof typeof TARGETS;
