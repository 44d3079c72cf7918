/**
 * Protocol v2 resumption tickets and the anti-replay store (docs/PROTOCOL.md §7, §10).
 * The ticket format and the PSK are checked against node:crypto (AES-GCM,
 * HMAC-SHA-384) computed independently from known key bytes; every clock is injected.
 */
import { createDecipheriv, createHmac } from 'node:crypto';
import { expect } from 'chai';
import { crypto, ErrorCode, QuantumTunnelError } from '../../lib/index.js';
import { type AntiReplayStore, MemoryAntiReplayStore } from '../../lib/protocol/antiReplay.js';
import {
  ClientTicketStore,
  type ClientTicket,
  clientTicketFromMessage,
  decodeNewSessionTicket,
  DEFAULT_TICKET_LIFETIME_SECONDS,
  deriveTicketPsk,
  encodeNewSessionTicket,
  MAX_TICKET_LIFETIME_SECONDS,
  type NewSessionTicket,
  TICKET_AGE_TOLERANCE_MS,
  TICKET_CLOCK_SKEW_MS,
  ticketAssociatedDataV2,
  TicketIssuer,
  type TicketIssuerOptions,
  ticketKeyId,
} from '../../lib/protocol/v2/tickets.js';
import { expectCode } from '../helpers/buffers.js';
import * as testing from '../../lib/testing.js';

const { timingSafeEqual } = crypto;
const KEY = Buffer.alloc(32, 0x5a);
const RESUMPTION = Buffer.alloc(48, 0x3c);
const T0 = 1_700_000_000_000; // ms
const SERVER = Buffer.from('cluster-a');
const SESSION = { suite: 0x0001, group: 0x0102 };

const secretOf = (bytes: Uint8Array) => testing.secretFromBytes(bytes);
const bytesOf = (s: crypto.Secret) => testing.exportSecret(s);

/** HKDF-Expand-Label with SHA-384 and "qtun2 ", by node:crypto (one HMAC block: length ≤ 48). */
function expandLabelByNode(secret: Buffer, label: string, context: Buffer, length: number): Buffer {
  const full = Buffer.from(`qtun2 ${label}`, 'ascii');
  const info = Buffer.concat([Buffer.of(length >> 8, length & 0xff, full.length), full, Buffer.of(context.length), context]);
  return createHmac('sha384', secret).update(Buffer.concat([info, Buffer.of(1)])).digest().subarray(0, length);
}

function issuerAt(clock: { t: number }, options: Partial<TicketIssuerOptions> = {}): TicketIssuer {
  return new TicketIssuer({ key: secretOf(KEY), serverIdentity: SERVER, now: () => clock.t, ...options });
}

/** The ticket inside an issued message, and the obfuscated age a prompt client sends. */
function presented(message: Buffer, ageMs = 0): { ticket: Buffer; age: number; nst: NewSessionTicket } {
  const nst = decodeNewSessionTicket(message);
  return { ticket: nst.ticket, age: (ageMs + nst.ageAdd) >>> 0, nst };
}

function opens(issuer: TicketIssuer, ticket: Uint8Array, age: number): boolean {
  const opened = issuer.open(ticket, age);
  opened?.psk.destroy();
  return opened !== undefined;
}

function expectMalformed(fn: () => unknown, what: string): void {
  expect(fn, what).to.throw(QuantumTunnelError).with.property('code', ErrorCode.MALFORMED_MESSAGE);
}

describe('protocol v2: NewSessionTicket codec', () => {
  const message: NewSessionTicket = {
    lifetimeSeconds: 7200,
    ageAdd: 0xdeadbeef,
    nonce: Buffer.from('0001020304050607', 'hex'),
    ticket: Buffer.alloc(140, 0x77),
    extensions: [{ type: 0x0a, data: Buffer.from([1, 2]) }, { type: 0x0b, data: Buffer.alloc(0) }],
  };
  const encoded = encodeNewSessionTicket(message);

  it('encodes BE32 lifetime ‖ BE32 age_add ‖ vec8 nonce ‖ vec16 ticket ‖ vec16 extensions, and round-trips', () => {
    const expected = Buffer.concat([
      Buffer.from('00001c20deadbeef', 'hex'),
      Buffer.from('08' + '0001020304050607', 'hex'),
      Buffer.from('008c', 'hex'), message.ticket,
      Buffer.from('000a' + '000a0002' + '0102' + '000b0000', 'hex'),
    ]);
    expect(encoded.toString('hex')).to.equal(expected.toString('hex'));
    expect(decodeNewSessionTicket(encoded)).to.deep.equal(message);
    // Limits that are still legal: a 7-day lifetime, a 255-byte nonce, an empty nonce, lifetime 0.
    for (const m of [
      { ...message, lifetimeSeconds: MAX_TICKET_LIFETIME_SECONDS },
      { ...message, nonce: Buffer.alloc(255, 1), extensions: [] },
      { ...message, nonce: Buffer.alloc(0), lifetimeSeconds: 0, ageAdd: 0xffffffff },
    ]) {
      expect(decodeNewSessionTicket(encodeNewSessionTicket(m))).to.deep.equal(m);
    }
  });

  it('decodes into copies: wiping the record buffer afterwards changes nothing', () => {
    const record = Buffer.from(encoded);
    const decoded = decodeNewSessionTicket(record);
    record.fill(0);
    expect(decoded).to.deep.equal(message);
  });

  it('refuses every truncation and trailing bytes', () => {
    for (let n = 0; n < encoded.length; n++) expectMalformed(() => decodeNewSessionTicket(encoded.subarray(0, n)), `truncated to ${n}`);
    expectMalformed(() => decodeNewSessionTicket(Buffer.concat([encoded, Buffer.of(0)])), 'trailing byte');
  });

  it('refuses overlong lengths, an empty ticket, a lifetime over 7 days and a repeated extension', () => {
    const at = { nonce: 8, ticket: 17, extensions: 17 + 2 + 140 };
    const patched = (offset: number, bytes: number[]) => {
      const b = Buffer.from(encoded);
      Buffer.from(bytes).copy(b, offset);
      return b;
    };
    expectMalformed(() => decodeNewSessionTicket(patched(at.nonce, [9])), 'nonce length past its field');
    expectMalformed(() => decodeNewSessionTicket(patched(at.nonce, [0xff])), 'nonce length past the end');
    expectMalformed(() => decodeNewSessionTicket(patched(at.ticket, [0x00, 0x8d])), 'ticket length + 1');
    expectMalformed(() => decodeNewSessionTicket(patched(at.ticket, [0xff, 0xff])), 'ticket length 65535');
    expectMalformed(() => decodeNewSessionTicket(patched(at.extensions, [0x00, 0x0b])), 'extensions length + 1');
    expectMalformed(() => decodeNewSessionTicket(patched(at.extensions + 4, [0x00, 0x03])), 'an extension past its list');
    expectMalformed(() => decodeNewSessionTicket(patched(at.extensions, [0x00, 0x09]).subarray(0, -1)), 'an extension header cut short');
    expectMalformed(() => decodeNewSessionTicket(patched(at.extensions + 8 + 2, [0x00, 0x0a])), 'extension type twice');
    expectMalformed(() => decodeNewSessionTicket(patched(0, [0x00, 0x09, 0x3a, 0x81])), 'lifetime 604801');
    expectMalformed(() => decodeNewSessionTicket(patched(0, [0xff, 0xff, 0xff, 0xff])), 'lifetime 2^32 - 1');
    expectMalformed(() => decodeNewSessionTicket(Buffer.from('0000000100000000' + '00' + '0000' + '0000', 'hex')), 'empty ticket');
    // The unpatched message still decodes: the refusals came from the patches.
    expect(decodeNewSessionTicket(patched(0, [0x00, 0x09, 0x3a, 0x80])).lifetimeSeconds).to.equal(MAX_TICKET_LIFETIME_SECONDS);
  });

  it('the encoder refuses what the wire cannot carry or the decoder would refuse', () => {
    const bad: Array<[string, Partial<NewSessionTicket>]> = [
      ['lifetime over 7 days', { lifetimeSeconds: MAX_TICKET_LIFETIME_SECONDS + 1 }],
      ['negative lifetime', { lifetimeSeconds: -1 }],
      ['ageAdd 2^32', { ageAdd: 2 ** 32 }],
      ['nonce of 256 bytes', { nonce: Buffer.alloc(256) }],
      ['empty ticket', { ticket: Buffer.alloc(0) }],
      ['ticket of 65536 bytes', { ticket: Buffer.alloc(65536) }],
      ['extension type twice', { extensions: [{ type: 1, data: Buffer.alloc(0) }, { type: 1, data: Buffer.alloc(1) }] }],
      ['extension type 65536', { extensions: [{ type: 0x10000, data: Buffer.alloc(0) }] }],
    ];
    for (const [what, patch] of bad) expectCode(() => encodeNewSessionTicket({ ...message, ...patch }), ErrorCode.INVALID_ARGUMENT);
  });
});

describe('protocol v2: ticket PSK', () => {
  it('deriveTicketPsk is HKDF-Expand-Label(resumption, "qtun2 resumption", nonce, 48) with SHA-384', () => {
    const nonce = Buffer.from('a1a2a3a4a5a6a7a8', 'hex');
    const psk = deriveTicketPsk(secretOf(RESUMPTION), nonce);
    expect(psk.length).to.equal(48);
    expect(bytesOf(psk).toString('hex')).to.equal(expandLabelByNode(RESUMPTION, 'resumption', nonce, 48).toString('hex'));
    // The nonce separates the PSKs of tickets from one session.
    const other = deriveTicketPsk(secretOf(RESUMPTION), Buffer.from('a1a2a3a4a5a6a7a9', 'hex'));
    expect(timingSafeEqual(psk, other)).to.equal(false);
    expectCode(() => deriveTicketPsk(RESUMPTION as unknown as crypto.Secret, nonce), ErrorCode.INVALID_ARGUMENT);
    expectCode(() => deriveTicketPsk(secretOf(RESUMPTION), Buffer.alloc(256)), ErrorCode.INVALID_ARGUMENT);
  });

  it('the key ID is HKDF-Expand-Label(key, "qtun2 ticket key id", "", 8)', () => {
    expect(ticketKeyId(secretOf(KEY)).toString('hex')).to.equal(expandLabelByNode(KEY, 'ticket key id', Buffer.alloc(0), 8).toString('hex'));
    expectCode(() => ticketKeyId(secretOf(Buffer.alloc(16))), ErrorCode.INVALID_KEY);
  });
});

describe('protocol v2: TicketIssuer', () => {
  it('issues a ticket that opens to the PSK the client derives, with the session fields', async () => {
    const clock = { t: T0 };
    const issuer = issuerAt(clock);
    const resumption = secretOf(RESUMPTION);
    const issued = issuer.issue(resumption, { ...SESSION, peerIdentity: Buffer.from('client-7') });
    expect(resumption.destroyed, 'the resumption secret is not consumed').to.equal(false);
    expect(issued.lifetimeSeconds).to.equal(DEFAULT_TICKET_LIFETIME_SECONDS).and.to.equal(7200);
    const nst = decodeNewSessionTicket(issued.message);
    expect([nst.lifetimeSeconds, nst.ageAdd, nst.nonce.toString('hex'), nst.extensions]).to.deep.equal([7200, issued.ageAdd, issued.nonce.toString('hex'), []]);
    expect(nst.nonce).to.have.length(8);
    expect(nst.ticket.subarray(0, 8).equals(ticketKeyId(secretOf(KEY)))).to.equal(true);

    const client = clientTicketFromMessage(nst, resumption, SESSION, clock.t);
    clock.t += 1500;
    const opened = issuer.open(nst.ticket, (1500 + nst.ageAdd) >>> 0);
    expect(opened).to.not.equal(undefined);
    const o = opened!;
    expect(timingSafeEqual(o.psk, client.psk), 'server and client hold the same PSK').to.equal(true);
    expect(bytesOf(o.psk).toString('hex')).to.equal(expandLabelByNode(RESUMPTION, 'resumption', nst.nonce, 48).toString('hex'));
    expect([o.suite, o.group, o.issuedAtMs, o.expiresAtMs]).to.deep.equal([SESSION.suite, SESSION.group, T0, T0 + 7200_000]);
    expect(o.peerIdentity?.toString()).to.equal('client-7');
    expect(o.ticketId).to.have.length(16);
    expect(await o.consume()).to.equal(true);

    // Without a peer identity there is none; two tickets differ in nonce, ageAdd, ticket ID and bytes.
    const a = presented(issuer.issue(resumption, SESSION).message, 0);
    const b = presented(issuer.issue(resumption, SESSION).message, 0);
    const oa = issuer.open(a.ticket, a.age)!;
    const ob = issuer.open(b.ticket, b.age)!;
    expect(oa.peerIdentity).to.equal(undefined);
    expect(a.nst.nonce.equals(b.nst.nonce) || a.nst.ageAdd === b.nst.ageAdd || oa.ticketId.equals(ob.ticketId)).to.equal(false);
    expect(timingSafeEqual(oa.psk, ob.psk)).to.equal(false);
    expect(a.ticket.subarray(8, 20).equals(b.ticket.subarray(8, 20)), 'fresh AEAD nonce').to.equal(false);
    for (const s of [o.psk, oa.psk, ob.psk, client.psk, resumption]) s.destroy();
    issuer.destroy();
  });

  it('seals exactly the documented layout (checked by node:crypto AES-256-GCM with fixed entropy)', () => {
    const clock = { t: T0 + 5 };
    const issuer = issuerAt(clock, { lifetimeSeconds: 3600 });
    const fixed = {
      nonce: Buffer.from('0102030405060708', 'hex'),
      ageAdd: 0x01020304,
      aeadNonce: Buffer.alloc(12, 0xa5),
      ticketId: Buffer.alloc(16, 0x1d),
      issuedAtMs: T0,
    };
    const issued = issuer.issue(secretOf(RESUMPTION), { suite: 0x0002, group: 0x0101, peerIdentity: Buffer.from('id') }, fixed);
    expect([issued.ageAdd, issued.nonce.toString('hex')]).to.deep.equal([0x01020304, '0102030405060708']);
    const { ticket } = decodeNewSessionTicket(issued.message);
    const keyId = expandLabelByNode(KEY, 'ticket key id', Buffer.alloc(0), 8);
    expect(ticket.subarray(0, 8).toString('hex')).to.equal(keyId.toString('hex'));
    expect(ticket.subarray(8, 20).equals(fixed.aeadNonce)).to.equal(true);
    const aad = Buffer.concat([Buffer.from('qtun2 ticket'), keyId, Buffer.of(0, SERVER.length), SERVER]);
    expect(ticketAssociatedDataV2(keyId, SERVER).equals(aad)).to.equal(true);
    const decipher = createDecipheriv('aes-256-gcm', KEY, fixed.aeadNonce);
    decipher.setAAD(aad);
    decipher.setAuthTag(ticket.subarray(-16));
    const plaintext = Buffer.concat([decipher.update(ticket.subarray(20, -16)), decipher.final()]);
    const expected = Buffer.concat([
      Buffer.from('0200' + '0002' + '0101', 'hex'),
      Buffer.from(T0.toString(16).padStart(16, '0'), 'hex'),
      Buffer.from('00000e10' + '01020304', 'hex'),
      fixed.ticketId,
      Buffer.from('026964', 'hex'),
      expandLabelByNode(RESUMPTION, 'resumption', fixed.nonce, 48),
    ]);
    expect(plaintext.toString('hex')).to.equal(expected.toString('hex'));
    // Deterministic given the entropy: the same inputs seal the same ticket.
    expect(issuer.issue(secretOf(RESUMPTION), { suite: 0x0002, group: 0x0101, peerIdentity: Buffer.from('id') }, fixed).message.equals(issued.message)).to.equal(true);
    issuer.destroy();
  });

  it('tickets open only under the same key and server identity', () => {
    const clock = { t: T0 };
    const ours = issuerAt(clock);
    const { ticket, age } = presented(ours.issue(secretOf(RESUMPTION), SESSION).message);
    const otherKey = issuerAt(clock, { key: secretOf(Buffer.alloc(32, 0x11)) });
    const otherServer = issuerAt(clock, { serverIdentity: Buffer.from('cluster-b') });
    const randomKey = new TicketIssuer({ serverIdentity: SERVER, now: () => clock.t });
    const twin = issuerAt(clock); // same key, same identity: a cluster peer
    expect(opens(otherKey, ticket, age)).to.equal(false);
    expect(opens(otherServer, ticket, age)).to.equal(false);
    expect(opens(randomKey, ticket, age)).to.equal(false);
    expect(opens(twin, ticket, age)).to.equal(true);
    expect(opens(ours, ticket, age)).to.equal(true);
    // The other key's ID in front of our ticket does not help: the AD carries the key ID.
    const relabelled = Buffer.concat([otherKey.keyId, ticket.subarray(8)]);
    expect(opens(otherKey, relabelled, age)).to.equal(false);
    for (const i of [ours, otherKey, otherServer, randomKey, twin]) i.destroy();
  });

  it('a flipped bit anywhere, any other length or random bytes: undefined, never a throw', () => {
    const clock = { t: T0 };
    const issuer = issuerAt(clock);
    const { ticket, age } = presented(issuer.issue(secretOf(RESUMPTION), { ...SESSION, peerIdentity: Buffer.from('p') }).message);
    for (let bit = 0; bit < ticket.length * 8; bit++) {
      const flipped = Buffer.from(ticket);
      flipped[bit >> 3]! ^= 1 << (bit & 7);
      expect(issuer.open(flipped, age), `bit ${bit}`).to.equal(undefined);
    }
    const inputs: unknown[] = [
      Buffer.alloc(0), ticket.subarray(0, -1), Buffer.concat([ticket, Buffer.of(0)]), Buffer.alloc(ticket.length),
      crypto.randomBytes(ticket.length), Buffer.alloc(1 << 16), undefined, null, 'ticket', [...ticket], new Uint16Array(ticket.length),
    ];
    for (const input of inputs) expect(issuer.open(input as Uint8Array, age), String(input)).to.equal(undefined);
    for (const badAge of [-1, 2 ** 32, 1.5, Number.NaN, '0' as unknown as number, undefined as unknown as number]) {
      expect(issuer.open(ticket, badAge), String(badAge)).to.equal(undefined);
    }
    // None of that hurt the genuine ticket.
    expect(opens(issuer, new Uint8Array(ticket), age)).to.equal(true);
    issuer.destroy();
  });

  it('refuses authentic tickets with a wrong version, a lifetime over 7 days, a bad layout or a huge issuedAt', () => {
    const clock = { t: T0 };
    const issuer = issuerAt(clock);
    const ctx = crypto.createAead(crypto.AeadSuite.AES_256_GCM, secretOf(KEY));
    const keyId = ticketKeyId(secretOf(KEY));
    const aad = ticketAssociatedDataV2(keyId, SERVER);
    const craft = (o: { version?: number; lifetime?: number; issued?: bigint; peerLength?: number; peer?: Buffer }) => {
      const head = Buffer.alloc(38);
      head.writeUInt16BE(o.version ?? 0x0200, 0);
      head.writeUInt16BE(1, 2);
      head.writeUInt16BE(0x0101, 4);
      head.writeBigUInt64BE(o.issued ?? BigInt(T0), 6);
      head.writeUInt32BE(o.lifetime ?? 3600, 14);
      head.writeUInt32BE(0, 18); // ageAdd 0: the obfuscated age is the age
      const peer = o.peer ?? Buffer.alloc(0);
      const nonce = crypto.randomBytes(12);
      return Buffer.concat([keyId, nonce, ctx.sealParts(nonce, aad, [head, Buffer.of(o.peerLength ?? peer.length), peer, crypto.randomSecret(48)])]);
    };
    expect(opens(issuer, craft({}), 0), 'the crafting is right').to.equal(true);
    expect(opens(issuer, craft({ peer: Buffer.from('xyz') }), 0)).to.equal(true);
    for (const version of [0x0100, 0x0201, 0x0000, 0xffff]) expect(opens(issuer, craft({ version }), 0), `version ${version}`).to.equal(false);
    expect(opens(issuer, craft({ lifetime: MAX_TICKET_LIFETIME_SECONDS }), 0)).to.equal(true);
    expect(opens(issuer, craft({ lifetime: MAX_TICKET_LIFETIME_SECONDS + 1 }), 0)).to.equal(false);
    expect(opens(issuer, craft({ peer: Buffer.from('xyz'), peerLength: 2 }), 0), 'peer length short of the PSK').to.equal(false);
    expect(opens(issuer, craft({ peer: Buffer.from('xyz'), peerLength: 4 }), 0), 'peer length into the PSK').to.equal(false);
    expect(opens(issuer, craft({ issued: 2n ** 64n - 1n }), 0)).to.equal(false);
    expect(opens(issuer, craft({ issued: 0n }), 0)).to.equal(false);
    ctx.destroy();
    issuer.destroy();
  });

  it('expires at issuedAt + lifetime, and refuses issuedAt in the future beyond the skew', () => {
    const clock = { t: T0 };
    const issuer = issuerAt(clock, { lifetimeSeconds: 100 });
    const nst = decodeNewSessionTicket(issuer.issue(secretOf(RESUMPTION), SESSION).message);
    const ageNow = () => ((clock.t - T0 + nst.ageAdd) >>> 0);
    clock.t = T0 + 100_000 - 1;
    expect(opens(issuer, nst.ticket, ageNow())).to.equal(true);
    clock.t = T0 + 100_000;
    expect(opens(issuer, nst.ticket, ageNow())).to.equal(false);
    // A ticket from a server whose clock runs ahead: fine within the age tolerance, refused far ahead.
    clock.t = T0;
    const ahead = (ms: number) => presented(issuer.issue(secretOf(RESUMPTION), SESSION, { issuedAtMs: T0 + ms }).message, 0);
    const near = ahead(5000);
    expect(opens(issuer, near.ticket, near.age)).to.equal(true);
    const far = ahead(TICKET_CLOCK_SKEW_MS + 1);
    for (const age of [0, 2 ** 32 - TICKET_CLOCK_SKEW_MS - 1]) expect(opens(issuer, far.ticket, (age + far.nst.ageAdd) >>> 0)).to.equal(false);
    issuer.destroy();
  });

  it(`accepts a client age within ±${TICKET_AGE_TOLERANCE_MS} ms of the server's, across the 2^32 wrap`, () => {
    const clock = { t: T0 };
    const issuer = issuerAt(clock);
    const AGE_ADD = 2 ** 32 - 30_000;
    const issued = issuer.issue(secretOf(RESUMPTION), SESSION, { ageAdd: AGE_ADD });
    const { ticket } = decodeNewSessionTicket(issued.message);
    clock.t = T0 + 60_000;
    const obfuscated = (ageMs: number) => (ageMs + AGE_ADD) >>> 0;
    expect(obfuscated(60_000)).to.equal(30_000); // it wraps
    for (const age of [60_000, 50_000, 70_000]) expect(opens(issuer, ticket, obfuscated(age)), `age ${age}`).to.equal(true);
    for (const age of [49_999, 70_001, 0, 2 ** 31]) expect(opens(issuer, ticket, obfuscated(age)), `age ${age}`).to.equal(false);
    expect(opens(issuer, ticket, 60_000), 'the plain age: ageAdd not applied').to.equal(false);
    issuer.destroy();
  });

  it('single use: consume() is true once; a second server sharing the store refuses the replay', async () => {
    const clock = { t: T0 };
    const store = new MemoryAntiReplayStore({ now: () => clock.t });
    const a = issuerAt(clock, { antiReplay: store });
    const b = issuerAt(clock, { antiReplay: store });
    const { ticket, age } = presented(a.issue(secretOf(RESUMPTION), SESSION).message);
    // Presented twice (a replayed ClientHello) opens twice: nothing is used up before consume().
    const first = a.open(ticket, age)!;
    const second = a.open(ticket, age)!;
    const atB = b.open(ticket, age)!;
    expect([first, second, atB].every(Boolean)).to.equal(true);
    expect(await first.consume()).to.equal(true);
    expect(await second.consume()).to.equal(false);
    expect(await atB.consume(), 'the other server refuses the replay').to.equal(false);
    expect(store.size).to.equal(1);
    // Separate default stores do not know of each other: sharing is what refuses replays.
    const c = issuerAt(clock);
    const d = issuerAt(clock);
    const t2 = presented(c.issue(secretOf(RESUMPTION), SESSION).message);
    expect(await c.open(t2.ticket, t2.age)!.consume()).to.equal(true);
    expect(await c.open(t2.ticket, t2.age)!.consume()).to.equal(false);
    expect(await d.open(t2.ticket, t2.age)!.consume()).to.equal(true);
    // Not single-use: consume() is always true and the store is not touched.
    const reusable = issuerAt(clock, { singleUse: false, antiReplay: store });
    const t3 = presented(reusable.issue(secretOf(RESUMPTION), SESSION).message);
    for (let i = 0; i < 3; i++) expect(await reusable.open(t3.ticket, t3.age)!.consume()).to.equal(true);
    expect(store.size).to.equal(1);
    for (const i of [a, b, c, d, reusable]) i.destroy();
  });

  it('consume() records the ticket ID until the ticket expires, and fails closed when the store fails', async () => {
    const clock = { t: T0 };
    const calls: Array<[string, number]> = [];
    const recording: AntiReplayStore = { consume: async (key, expiresAtMs) => (calls.push([key.toString('hex'), expiresAtMs]), true) };
    const issuer = issuerAt(clock, { antiReplay: recording, lifetimeSeconds: 60 });
    const { ticket, age } = presented(issuer.issue(secretOf(RESUMPTION), SESSION, { ticketId: Buffer.alloc(16, 0xab) }).message);
    const opened = issuer.open(ticket, age)!;
    expect(await opened.consume()).to.equal(true);
    expect(calls).to.deep.equal([['ab'.repeat(16), T0 + 60_000]]);
    opened.psk.destroy();
    const stores: AntiReplayStore[] = [
      { consume: () => Promise.reject(new Error('redis down')) },
      { consume: () => { throw new Error('sync bug'); } },
      { consume: async () => 'yes' as unknown as boolean },
    ];
    for (const store of stores) {
      const failing = issuerAt(clock, { antiReplay: store });
      const p = presented(failing.issue(secretOf(RESUMPTION), SESSION).message);
      const o = failing.open(p.ticket, p.age)!;
      expect(await o.consume()).to.equal(false);
      o.psk.destroy();
      failing.destroy();
    }
    issuer.destroy();
  });

  it('keeps one previous key: old tickets open after one rotation, not after two', () => {
    const clock = { t: T0 };
    const issuer = issuerAt(clock);
    const first = presented(issuer.issue(secretOf(RESUMPTION), SESSION).message);
    const firstKeyId = issuer.keyId;
    issuer.rotateKey();
    expect(issuer.keyId.equals(firstKeyId)).to.equal(false);
    expect(opens(issuer, first.ticket, first.age)).to.equal(true);
    const next = secretOf(Buffer.alloc(32, 0x77));
    issuer.rotateKey(next);
    expect(next.destroyed, 'the issuer takes ownership of a given key').to.equal(true);
    expect(opens(issuer, first.ticket, first.age)).to.equal(false);
    const current = presented(issuer.issue(secretOf(RESUMPTION), SESSION).message);
    const twin = issuerAt(clock, { key: secretOf(Buffer.alloc(32, 0x77)) });
    expect(opens(twin, current.ticket, current.age), 'the rotated-in key is the one given').to.equal(true);
    expectCode(() => issuer.rotateKey(secretOf(Buffer.alloc(16))), ErrorCode.INVALID_KEY);
    expect(opens(issuer, current.ticket, current.age), 'a refused rotation changes nothing').to.equal(true);
    issuer.destroy();
    twin.destroy();
  });

  it('owns its key; once destroyed it opens nothing and refuses to issue', () => {
    const key = secretOf(KEY);
    const issuer = new TicketIssuer({ key, serverIdentity: SERVER });
    expect(key.destroyed).to.equal(true);
    const { ticket, age } = presented(issuer.issue(secretOf(RESUMPTION), SESSION).message);
    expect(opens(issuer, ticket, age)).to.equal(true);
    issuer.destroy();
    expect(issuer.destroyed).to.equal(true);
    expect(issuer.open(ticket, age)).to.equal(undefined);
    expectCode(() => issuer.issue(secretOf(RESUMPTION), SESSION), ErrorCode.HANDLE_DESTROYED);
    expectCode(() => issuer.rotateKey(), ErrorCode.HANDLE_DESTROYED);
    issuer.destroy(); // twice is fine
  });

  it('rejects bad options and arguments with typed errors', () => {
    const none = undefined as unknown as TicketIssuerOptions;
    expectCode(() => new TicketIssuer(none), ErrorCode.INVALID_ARGUMENT);
    expectCode(() => new TicketIssuer({} as TicketIssuerOptions), ErrorCode.INVALID_ARGUMENT);
    expectCode(() => new TicketIssuer({ serverIdentity: Buffer.alloc(0) }), ErrorCode.INVALID_ARGUMENT);
    for (const lifetimeSeconds of [0, -1, MAX_TICKET_LIFETIME_SECONDS + 1, 1.5]) {
      expectCode(() => new TicketIssuer({ serverIdentity: SERVER, lifetimeSeconds }), ErrorCode.INVALID_ARGUMENT);
    }
    expectCode(() => new TicketIssuer({ serverIdentity: SERVER, key: secretOf(Buffer.alloc(31)) }), ErrorCode.INVALID_KEY);
    expectCode(() => new TicketIssuer({ serverIdentity: SERVER, antiReplay: {} as AntiReplayStore }), ErrorCode.INVALID_ARGUMENT);
    const issuer = new TicketIssuer({ serverIdentity: SERVER, lifetimeSeconds: MAX_TICKET_LIFETIME_SECONDS });
    expect(issuer.lifetimeSeconds).to.equal(MAX_TICKET_LIFETIME_SECONDS);
    expectCode(() => issuer.issue(secretOf(Buffer.alloc(32)), SESSION), ErrorCode.INVALID_KEY);
    expectCode(() => issuer.issue(RESUMPTION as unknown as crypto.Secret, SESSION), ErrorCode.INVALID_KEY);
    const gone = secretOf(RESUMPTION);
    gone.destroy();
    expectCode(() => issuer.issue(gone, SESSION), ErrorCode.HANDLE_DESTROYED);
    const r = secretOf(RESUMPTION);
    for (const fields of [{ suite: -1, group: 1 }, { suite: 1, group: 0x10000 }, { ...SESSION, peerIdentity: Buffer.alloc(256) }]) {
      expectCode(() => issuer.issue(r, fields), ErrorCode.INVALID_ARGUMENT);
    }
    expectCode(() => issuer.issue(r, SESSION, { aeadNonce: Buffer.alloc(11) }), ErrorCode.INVALID_ARGUMENT);
    expectCode(() => issuer.issue(r, SESSION, { ticketId: Buffer.alloc(15) }), ErrorCode.INVALID_ARGUMENT);
    expectCode(() => issuer.issue(r, SESSION, { ageAdd: 2 ** 32 }), ErrorCode.INVALID_ARGUMENT);
    expect(issuer.issue(r, { ...SESSION, peerIdentity: Buffer.alloc(255) }).message.length).to.be.greaterThan(255);
    issuer.destroy();
  });
});

describe('protocol v2: MemoryAntiReplayStore', () => {
  it('records a key once until it expires', async () => {
    const clock = { t: T0 };
    const store = new MemoryAntiReplayStore({ now: () => clock.t });
    const key = Buffer.alloc(16, 1);
    expect(await store.consume(key, T0 + 1000)).to.equal(true);
    expect(await store.consume(Buffer.from(key), T0 + 1000)).to.equal(false);
    expect(await store.consume(Buffer.alloc(16, 2), T0 + 1000)).to.equal(true);
    clock.t = T0 + 999;
    expect(await store.consume(key, T0 + 5000)).to.equal(false);
    clock.t = T0 + 1000;
    expect(await store.consume(key, T0 + 5000), 'expired: usable again').to.equal(true);
    expect(await store.consume(key, T0 + 5000)).to.equal(false);
    // A key whose expiry has passed is not remembered: nothing could be refused with it.
    expect(await store.consume(Buffer.alloc(16, 3), T0)).to.equal(true);
    expect(await store.consume(Buffer.alloc(16, 3), T0)).to.equal(true);
    expect(store.size).to.equal(1); // key 2 pruned as expired, key 3 never stored
  });

  it('fails closed when full of live keys, and frees room as keys expire (capacity never exceeded)', async () => {
    const clock = { t: T0 };
    const store = new MemoryAntiReplayStore({ capacity: 3, now: () => clock.t });
    expect(store.capacity).to.equal(3);
    const k = (i: number) => Buffer.of(i);
    expect(await store.consume(k(1), T0 + 10_000)).to.equal(true);
    expect(await store.consume(k(2), T0 + 50_000)).to.equal(true); // out of expiry order
    expect(await store.consume(k(3), T0 + 20_000)).to.equal(true);
    expect(await store.consume(k(4), T0 + 20_000), 'full: refused').to.equal(false);
    expect(await store.consume(k(4), T0 + 20_000), 'and not recorded').to.equal(false);
    expect(store.size).to.equal(3);
    clock.t = T0 + 10_000; // key 1 expired (front)
    expect(await store.consume(k(4), T0 + 20_000)).to.equal(true);
    expect(await store.consume(k(5), T0 + 60_000)).to.equal(false);
    clock.t = T0 + 30_000; // keys 3 and 4 expired behind the live key 2: the sweep finds them
    expect(await store.consume(k(5), T0 + 60_000)).to.equal(true);
    expect(await store.consume(k(2), T0 + 60_000), 'key 2 still live').to.equal(false);
    expect(store.size).to.be.at.most(3);
    store.clear();
    expect(store.size).to.equal(0);
  });

  it('long keys are held by digest: distinct keys stay distinct, equal keys collide', async () => {
    const store = new MemoryAntiReplayStore({ now: () => T0 });
    const long = Buffer.alloc(100, 7);
    const other = Buffer.from(long);
    other[99] = 8;
    expect(await store.consume(long, T0 + 1)).to.equal(true);
    expect(await store.consume(other, T0 + 1)).to.equal(true);
    expect(await store.consume(Buffer.from(long), T0 + 1)).to.equal(false);
    expect(await store.consume(new Uint8Array(0) as Buffer, T0 + 1)).to.equal(true);
    expect(await store.consume(Buffer.alloc(0), T0 + 1)).to.equal(false);
  });

  it('rejects bad options and arguments with typed errors', async () => {
    for (const capacity of [0, -1, 1.5, 2 ** 24 + 1]) expectCode(() => new MemoryAntiReplayStore({ capacity }), ErrorCode.INVALID_ARGUMENT);
    expectCode(() => new MemoryAntiReplayStore({ now: 5 as unknown as () => number }), ErrorCode.INVALID_ARGUMENT);
    const store = new MemoryAntiReplayStore();
    for (const [key, at] of [['k', T0], [Buffer.of(1), Number.NaN], [Buffer.of(1), Number.POSITIVE_INFINITY]] as const) {
      const err = await store.consume(key as Buffer, at).then(() => undefined, (e: unknown) => e);
      expect(err).to.be.instanceOf(QuantumTunnelError).with.property('code', ErrorCode.INVALID_ARGUMENT);
    }
  });
});

describe('protocol v2: ClientTicketStore', () => {
  const ticketAt = (receivedAtMs: number, o: Partial<ClientTicket> = {}): ClientTicket => ({
    ticket: crypto.randomBytes(100),
    psk: crypto.randomSecret(48),
    ...SESSION,
    lifetimeSeconds: 100,
    ageAdd: 5,
    receivedAtMs,
    ...o,
  });

  it('take() hands out each ticket once, newest first, per server', () => {
    const store = new ClientTicketStore({ now: () => T0 });
    const older = ticketAt(T0 - 2000);
    const newer = ticketAt(T0 - 1000);
    const elsewhere = ticketAt(T0);
    store.add('a:443', older);
    store.add('a:443', newer);
    store.add('b:443', elsewhere);
    expect(store.size).to.equal(3);
    const first = store.take('a:443')!;
    expect(first.ticket.equals(newer.ticket)).to.equal(true);
    expect(first.psk).to.equal(newer.psk);
    expect(first.psk.destroyed, 'the caller owns it now').to.equal(false);
    expect(store.take('a:443')!.ticket.equals(older.ticket)).to.equal(true);
    expect(store.take('a:443')).to.equal(undefined);
    expect(store.take('c:443')).to.equal(undefined);
    expect(store.take('b:443')!.ticket.equals(elsewhere.ticket)).to.equal(true);
    expect(store.size).to.equal(0);
  });

  it('copies the ticket bytes it is given', () => {
    const store = new ClientTicketStore({ now: () => T0 });
    const t = ticketAt(T0);
    const original = Buffer.from(t.ticket);
    store.add('s', t);
    t.ticket.fill(0);
    expect(store.take('s')!.ticket.equals(original)).to.equal(true);
  });

  it('drops and destroys expired tickets; lifetime 0 is discarded at once', () => {
    const clock = { t: T0 };
    const store = new ClientTicketStore({ now: () => clock.t });
    const expiring = ticketAt(T0, { lifetimeSeconds: 10 });
    const lasting = ticketAt(T0 - 1, { lifetimeSeconds: 100 });
    store.add('s', lasting);
    store.add('s', expiring);
    clock.t = T0 + 10_000;
    const got = store.take('s')!;
    expect(got.ticket.equals(lasting.ticket), 'the expired newer one was skipped').to.equal(true);
    expect(expiring.psk.destroyed).to.equal(true);
    expect(store.size).to.equal(0);
    const zero = ticketAt(T0, { lifetimeSeconds: 0 });
    store.add('s', zero);
    expect(zero.psk.destroyed).to.equal(true);
    expect(store.take('s')).to.equal(undefined);
  });

  it('bounds tickets per server and in total, destroying the evicted PSKs', () => {
    const store = new ClientTicketStore({ perServer: 2, total: 3, now: () => T0 });
    const s1 = [0, 1, 2].map((i) => ticketAt(T0 + i));
    for (const t of s1) store.add('one', t);
    expect(s1[0]!.psk.destroyed, 'the server\'s oldest went').to.equal(true);
    expect(store.size).to.equal(2);
    const s2 = [3, 4].map((i) => ticketAt(T0 + i));
    for (const t of s2) store.add('two', t);
    expect(store.size).to.equal(3);
    expect(s1[1]!.psk.destroyed, 'the oldest of all went').to.equal(true);
    expect([s1[2], ...s2].every((t) => !t!.psk.destroyed)).to.equal(true);
    expect(store.take('one')!.ticket.equals(s1[2]!.ticket)).to.equal(true);
    expect(store.take('one')).to.equal(undefined);
    store.destroy();
    expect(s2.every((t) => t.psk.destroyed)).to.equal(true);
    expect(store.size).to.equal(0);
    expect(store.take('two')).to.equal(undefined);
    store.destroy(); // twice is fine
  });

  it('obfuscatedAge is (age in ms + ageAdd) mod 2^32, and the issuer accepts it', () => {
    const clock = { t: T0 };
    const issuer = issuerAt(clock);
    const store = new ClientTicketStore({ now: () => clock.t + 250 }); // the client's clock runs 250 ms ahead
    const resumption = secretOf(RESUMPTION);
    const nst = decodeNewSessionTicket(issuer.issue(resumption, SESSION).message);
    store.add('srv', clientTicketFromMessage(nst, resumption, SESSION, clock.t + 250 + 40)); // 40 ms in flight
    clock.t += 30_000;
    const t = store.take('srv')!;
    const age = store.obfuscatedAge(t);
    expect(age).to.equal((30_000 - 40 + nst.ageAdd) >>> 0);
    const opened = issuer.open(t.ticket, age)!;
    expect(opened).to.not.equal(undefined);
    expect(timingSafeEqual(opened.psk, t.psk)).to.equal(true);
    expect(store.obfuscatedAge({ ...t, ageAdd: 0xffffffff }, t.receivedAtMs + 2)).to.equal(1);
    expect(store.obfuscatedAge({ ...t, ageAdd: 7 }, t.receivedAtMs - 500), 'a clock that went back counts as age 0').to.equal(7);
    for (const s of [opened.psk, t.psk, resumption]) s.destroy();
    issuer.destroy();
  });

  it('rejects bad tickets and options with typed errors, leaving the PSK with the caller', () => {
    expectCode(() => new ClientTicketStore({ perServer: 0 }), ErrorCode.INVALID_ARGUMENT);
    expectCode(() => new ClientTicketStore({ total: 0 }), ErrorCode.INVALID_ARGUMENT);
    const store = new ClientTicketStore({ now: () => T0 });
    const bad: Array<Partial<ClientTicket>> = [
      { ticket: Buffer.alloc(0) },
      { lifetimeSeconds: MAX_TICKET_LIFETIME_SECONDS + 1 },
      { ageAdd: -1 },
      { suite: 0x10000 },
      { receivedAtMs: Number.NaN },
      { psk: RESUMPTION as unknown as crypto.Secret },
    ];
    for (const patch of bad) {
      const t = ticketAt(T0, patch);
      expectCode(() => store.add('s', t), ErrorCode.INVALID_ARGUMENT);
      if (crypto.isSecret(t.psk)) expect(t.psk.destroyed).to.equal(false);
    }
    expectCode(() => store.add(1 as unknown as string, ticketAt(T0)), ErrorCode.INVALID_ARGUMENT);
    expect(store.size).to.equal(0);
  });
});
