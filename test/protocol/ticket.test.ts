import { expect } from 'chai';
import { crypto, QuantumTunnelError } from '../../lib/index.js';
import {
  DEFAULT_TICKET_LIFETIME_SECONDS,
  TICKET_PLAINTEXT_SIZE,
  TICKET_SIZE,
  TICKET_VERSION,
} from '../../lib/protocol/constants.js';
import {
  TICKET_AAD_LABEL,
  TICKET_CLOCK_SKEW_SECONDS,
  TicketManager,
  type TicketManagerOptions,
  type TicketRedemption,
  sealTicket,
  ticketAssociatedData,
} from '../../lib/protocol/ticket.js';
import { hex, loadFixture } from '../helpers/fixtures.js';
import * as testing from '../../lib/testing.js';

const A4 = loadFixture('protocol-vectors.json')['A.4'].ticket;
const { AeadSuite, createAead, timingSafeEqual } = crypto;

const KEY_BYTES = Buffer.alloc(32, 0x5a);
const T0 = 1_700_000_000; // seconds

function secretOf(bytes: Uint8Array): crypto.Secret {
  return testing.secretFromBytes(bytes);
}

function randomMaster(): crypto.Secret {
  return crypto.randomSecret(32);
}

/** A manager on KEY_BYTES with a settable clock (in seconds). */
function managerAt(seconds: { t: number }, options: TicketManagerOptions = {}): TicketManager {
  return new TicketManager({ key: secretOf(KEY_BYTES), now: () => seconds.t * 1000 + 999, ...options });
}

/** Seals arbitrary fields the way a manager on KEY_BYTES would (same key, same AD). */
function craft(fields: { version?: number; suite?: number; master?: crypto.Secret; createdAt: number }, serverIdentity?: Uint8Array): Buffer {
  const ctx = createAead(AeadSuite.AES_256_GCM, secretOf(KEY_BYTES));
  try {
    const aad = ticketAssociatedData(secretOf(KEY_BYTES), serverIdentity);
    return sealTicket(ctx, crypto.randomBytes(12), aad, {
      version: fields.version ?? TICKET_VERSION,
      suite: fields.suite ?? 1,
      master: fields.master ?? randomMaster(),
      createdAt: fields.createdAt,
    });
  } finally {
    ctx.destroy();
  }
}

/** Redeems and, when it redeems, consumes (what a handshake does once the client's Finished verified). */
function used(r: TicketRedemption): string {
  if (r.ok) {
    r.master.destroy();
    return r.consume() ? 'ok' : 'replayed';
  }
  return r.reason;
}

function refusal(r: TicketRedemption): string {
  if (r.ok) {
    r.master.destroy();
    return 'ok';
  }
  return r.reason;
}

function expectTyped(fn: () => unknown, code: string): void {
  expect(fn).to.throw(QuantumTunnelError).with.property('code', code);
}

describe('session tickets (PROTOCOL.md §10, §14 #3/#4 fixed)', () => {
  it('reproduces the Appendix A.4 ticket byte for byte with the reference nonce and AD', () => {
    const ctx = createAead(AeadSuite.AES_256_GCM, secretOf(hex(A4.ticketKeyHex)));
    const f = A4.fields;
    const ticket = sealTicket(ctx, hex(A4.nonceHex), hex(A4.aadHex), {
      version: f.version,
      suite: f.cipherSuite,
      master: secretOf(hex(f.masterHex)),
      createdAt: f.createdAt,
    });
    expect(ticket).to.have.length(TICKET_SIZE);
    expect(ticket.toString('hex')).to.equal(A4.ticketHex);
    // Opening it gives the plaintext back with the master moved into a Secret.
    const { plaintext, secret } = ctx.openWithSecret(hex(A4.nonceHex), hex(A4.aadHex), ticket.subarray(12), 3, 32);
    expect(plaintext).to.have.length(TICKET_PLAINTEXT_SIZE);
    const expected = hex(A4.plaintextHex);
    expected.fill(0, 3, 35);
    expect(plaintext.toString('hex')).to.equal(expected.toString('hex'));
    expect(testing.exportSecret(secret).toString('hex')).to.equal(f.masterHex);
  });

  it('round-trips issue and redeem: master, suite and createdAt', () => {
    const clock = { t: T0 };
    const m = managerAt(clock);
    const master = randomMaster();
    const ticket = m.issue(master, 0x0002);
    expect(ticket).to.be.instanceOf(Buffer).with.length(TICKET_SIZE);
    const r = m.redeem(ticket);
    expect(r.ok).to.equal(true);
    if (!r.ok) return;
    expect(timingSafeEqual(r.master, master)).to.equal(true);
    expect(r.master.length).to.equal(32);
    expect(r.suite).to.equal(0x0002);
    expect(r.createdAt).to.equal(T0);
    // An explicit created_at (the session's establishment time) is carried as given.
    const r2 = m.redeem(m.issue(master, 1, T0 - 100));
    expect(r2.ok && r2.createdAt).to.equal(T0 - 100);
    // Not single-use by default (the reference's behaviour); a view into a larger buffer works too.
    expect(refusal(m.redeem(ticket))).to.equal('ok');
    const framed = Buffer.concat([Buffer.alloc(5, 0xee), ticket, Buffer.alloc(3, 0xee)]);
    expect(refusal(m.redeem(framed.subarray(5, 5 + TICKET_SIZE)))).to.equal('ok');
    m.destroy();
  });

  it('uses a fresh nonce per ticket, so two tickets share no keystream (§14 #3)', () => {
    const clock = { t: T0 };
    const m = managerAt(clock);
    const master = randomMaster();
    const a = m.issue(master, 1, T0);
    const b = m.issue(master, 1, T0 - 1);
    expect(a.equals(b)).to.equal(false);
    expect(a.subarray(0, 12).equals(b.subarray(0, 12))).to.equal(false);
    // The plaintexts differ only in created_at; the ciphertext XOR must not reveal that.
    const ptXor = Buffer.alloc(43);
    ptXor.writeBigUInt64BE(BigInt(T0) ^ BigInt(T0 - 1), 35);
    const ctXor = Buffer.from(a.subarray(12, 55).map((x, i) => x ^ b[12 + i]!));
    expect(ctXor.equals(ptXor)).to.equal(false);
    // The reference's zero nonce shows exactly that leak.
    const ctx = createAead(AeadSuite.AES_256_GCM, secretOf(KEY_BYTES));
    const zero = Buffer.alloc(12);
    const ra = sealTicket(ctx, zero, Buffer.alloc(0), { version: 1, suite: 1, master, createdAt: T0 });
    const rb = sealTicket(ctx, zero, Buffer.alloc(0), { version: 1, suite: 1, master, createdAt: T0 - 1 });
    expect(Buffer.from(ra.subarray(12, 55).map((x, i) => x ^ rb[12 + i]!)).equals(ptXor)).to.equal(true);
    m.destroy();
  });

  it('binds tickets to the issuing server: other keys, other identities and the empty AD fail', () => {
    const clock = { t: T0 };
    const ours = managerAt(clock);
    const ticket = ours.issue(randomMaster(), 1);
    const other = new TicketManager({ now: () => clock.t * 1000 });
    expect(refusal(other.redeem(ticket))).to.equal('invalid');
    // Same key bytes, different serverIdentity: the AD differs.
    const elsewhere = managerAt(clock, { serverIdentity: Buffer.from('server-b') });
    expect(refusal(elsewhere.redeem(ticket))).to.equal('invalid');
    expect(refusal(ours.redeem(elsewhere.issue(randomMaster(), 1)))).to.equal('invalid');
    // A cluster sharing key and identity accepts each other's tickets.
    const peer = managerAt(clock, { serverIdentity: Buffer.from('server-b') });
    expect(refusal(peer.redeem(elsewhere.issue(randomMaster(), 1)))).to.equal('ok');
    // A ticket sealed the reference way (empty AD) under our very key does not open.
    const ctx = createAead(AeadSuite.AES_256_GCM, secretOf(KEY_BYTES));
    const refStyle = sealTicket(ctx, crypto.randomBytes(12), Buffer.alloc(0), { version: 1, suite: 1, master: randomMaster(), createdAt: T0 });
    expect(refusal(ours.redeem(refStyle))).to.equal('invalid');
    // The AD is the label, the 8-byte key ID and the identity.
    const aad = ticketAssociatedData(secretOf(KEY_BYTES), Buffer.from('id'));
    expect(aad).to.have.length(TICKET_AAD_LABEL.length + 8 + 2);
    expect(aad.subarray(0, TICKET_AAD_LABEL.length).toString('ascii')).to.equal('quantum-tunnel ticket v1');
    expect(aad.subarray(TICKET_AAD_LABEL.length, -2).equals(crypto.deriveKey('quantum-tunnel-ticket-key-id', secretOf(KEY_BYTES), 8))).to.equal(true);
    for (const m of [ours, other, elsewhere, peer]) m.destroy();
  });

  it('keeps one previous key: old tickets redeem after one rotation, not after two', () => {
    const clock = { t: T0 };
    const m = managerAt(clock);
    const first = m.issue(randomMaster(), 1);
    m.rotateKey();
    expect(refusal(m.redeem(first))).to.equal('ok');
    const next = secretOf(Buffer.alloc(32, 0x77));
    m.rotateKey(next);
    expect(next.destroyed, 'the manager owns (and consumes) a given key').to.equal(true);
    expect(refusal(m.redeem(first))).to.equal('invalid');
    const current = m.issue(randomMaster(), 1);
    expect(refusal(m.redeem(current))).to.equal('ok');
    // The rotated-in key is the one given: another manager on it opens the new tickets.
    const twin = new TicketManager({ key: secretOf(Buffer.alloc(32, 0x77)), now: () => clock.t * 1000 });
    expect(refusal(twin.redeem(current))).to.equal('ok');
    expectTyped(() => m.rotateKey(secretOf(Buffer.alloc(16))), 'ERR_QT_INVALID_KEY');
    expect(refusal(m.redeem(current)), 'a refused rotation changes nothing').to.equal('ok');
    m.destroy();
    twin.destroy();
  });

  it('expires tickets after the lifetime, with the reference default when 0', () => {
    const clock = { t: T0 };
    const m = managerAt(clock, { lifetimeSeconds: 3600 });
    const ticket = m.issue(randomMaster(), 1);
    clock.t = T0 + 3600;
    expect(refusal(m.redeem(ticket))).to.equal('ok');
    clock.t = T0 + 3601;
    expect(refusal(m.redeem(ticket))).to.equal('expired');
    for (const lifetimeSeconds of [0, undefined]) {
      const d = managerAt(clock, { lifetimeSeconds });
      expect(d.lifetimeSeconds).to.equal(DEFAULT_TICKET_LIFETIME_SECONDS);
      const t = d.issue(randomMaster(), 1, clock.t - DEFAULT_TICKET_LIFETIME_SECONDS);
      expect(refusal(d.redeem(t))).to.equal('ok');
      expect(refusal(d.redeem(d.issue(randomMaster(), 1, clock.t - DEFAULT_TICKET_LIFETIME_SECONDS - 1)))).to.equal('expired');
      d.destroy();
    }
    m.destroy();
  });

  it(`refuses a created_at more than ${TICKET_CLOCK_SKEW_SECONDS} s in the future`, () => {
    const clock = { t: T0 };
    const m = managerAt(clock);
    expect(refusal(m.redeem(m.issue(randomMaster(), 1, T0 + TICKET_CLOCK_SKEW_SECONDS)))).to.equal('ok');
    expect(refusal(m.redeem(m.issue(randomMaster(), 1, T0 + TICKET_CLOCK_SKEW_SECONDS + 1)))).to.equal('future');
    expect(refusal(m.redeem(craft({ createdAt: Number.MAX_SAFE_INTEGER })))).to.equal('future');
    // A full BE64 created_at beyond 2^53 (only a forger with the key could make one) is still 'future'.
    const ctx = createAead(AeadSuite.AES_256_GCM, secretOf(KEY_BYTES));
    const nonce = crypto.randomBytes(12);
    const sealed = ctx.sealParts(nonce, ticketAssociatedData(secretOf(KEY_BYTES)), [Buffer.from([1, 0, 1]), randomMaster(), Buffer.alloc(8, 0xff)]);
    expect(refusal(m.redeem(Buffer.concat([nonce, sealed])))).to.equal('future');
    m.destroy();
  });

  it('checks the version byte', () => {
    const clock = { t: T0 };
    const m = managerAt(clock);
    expect(refusal(m.redeem(craft({ version: 1, createdAt: T0 })))).to.equal('ok');
    for (const version of [0, 2, 0x81, 0xff]) expect(refusal(m.redeem(craft({ version, createdAt: T0 }))), `version ${version}`).to.equal('version');
    m.destroy();
  });

  it('applies the suite policy hook, and survives a hook that throws', () => {
    const clock = { t: T0 };
    const fips = managerAt(clock, { acceptSuite: (s) => s === 0x0001 });
    expect(refusal(fips.redeem(fips.issue(randomMaster(), 0x0001)))).to.equal('ok');
    expect(refusal(fips.redeem(fips.issue(randomMaster(), 0x0002)))).to.equal('suite');
    expect(refusal(fips.redeem(fips.issue(randomMaster(), 0xabcd)))).to.equal('suite');
    const broken = managerAt(clock, { acceptSuite: () => { throw new Error('policy bug'); } });
    expect(refusal(broken.redeem(broken.issue(randomMaster(), 1)))).to.equal('invalid');
    // Without a hook any suite is accepted, as in the reference's standard build.
    const open = managerAt(clock);
    expect(refusal(open.redeem(open.issue(randomMaster(), 0xabcd)))).to.equal('ok');
    for (const m of [fips, broken, open]) m.destroy();
  });

  it('single use: a ticket is used up only when consumed (after the client proved it), then refused until it would have expired', () => {
    const clock = { t: T0 };
    const m = managerAt(clock, { singleUse: true, lifetimeSeconds: 100 });
    const a = m.issue(randomMaster(), 1);
    const b = m.issue(randomMaster(), 1);
    // Presented without proof (a replayed ClientHello): not used up.
    expect(refusal(m.redeem(a))).to.equal('ok');
    expect(refusal(m.redeem(a))).to.equal('ok');
    // Two handshakes racing with one ticket: the second to prove it is refused.
    const first = m.redeem(b);
    const second = m.redeem(b);
    expect(first.ok && second.ok).to.equal(true);
    if (first.ok && second.ok) {
      expect(first.consume()).to.equal(true);
      expect(second.consume()).to.equal(false);
      first.master.destroy();
      second.master.destroy();
    }
    expect(refusal(m.redeem(b))).to.equal('replayed');
    const c2 = m.issue(randomMaster(), 1);
    expect(used(m.redeem(c2))).to.equal('ok');
    expect(used(m.redeem(a))).to.equal('ok');
    expect(used(m.redeem(a))).to.equal('replayed');
    clock.t = T0 + 100;
    expect(used(m.redeem(a))).to.equal('replayed');
    clock.t = T0 + 101;
    expect(used(m.redeem(a))).to.equal('expired');
    // A ticket refused for another reason is not used up.
    const fips = managerAt(clock, { singleUse: true, acceptSuite: (s) => s === 1 });
    const c = fips.issue(randomMaster(), 2);
    expect(used(fips.redeem(c))).to.equal('suite');
    expect(used(fips.redeem(c))).to.equal('suite');
    m.destroy();
    fips.destroy();
  });

  it('single use: fails closed when the memory is full of live tickets, and frees it as they expire', () => {
    const clock = { t: T0 };
    const m = managerAt(clock, { singleUse: true, singleUseCapacity: 3, lifetimeSeconds: 10 });
    const early = [0, 1].map(() => m.issue(randomMaster(), 1, T0));
    const late = m.issue(randomMaster(), 1, T0 + 5);
    for (const t of [...early, late]) expect(used(m.redeem(t))).to.equal('ok');
    const extra = m.issue(randomMaster(), 1, T0 + 5);
    expect(used(m.redeem(extra)), 'full: refused, not remembered').to.equal('replayed');
    clock.t = T0 + 11; // the two early tickets are past their lifetime: their entries go
    expect(used(m.redeem(extra))).to.equal('ok');
    expect(used(m.redeem(extra))).to.equal('replayed');
    expect(used(m.redeem(late))).to.equal('replayed');
    m.destroy();
  });

  it('never throws on malformed input: every wrong length, random bytes and every bit flip', () => {
    const clock = { t: T0 };
    const m = managerAt(clock, { singleUse: true });
    const good = m.issue(randomMaster(), 1);
    const inputs: unknown[] = [
      Buffer.alloc(0), Buffer.alloc(1), Buffer.alloc(28), Buffer.alloc(29), Buffer.alloc(70), Buffer.alloc(72),
      Buffer.concat([good, Buffer.alloc(1)]), good.subarray(0, 70), new Uint8Array(1 << 16),
      undefined, null, 'ticket', 71, [...good], { length: 71 }, new Uint16Array(71),
    ];
    for (const input of inputs) {
      const r = m.redeem(input as Uint8Array);
      expect(r, String(input)).to.deep.equal({ ok: false, reason: 'malformed' });
    }
    for (let i = 0; i < 64; i++) expect(m.redeem(crypto.randomBytes(71))).to.deep.equal({ ok: false, reason: 'invalid' });
    expect(m.redeem(Buffer.alloc(71))).to.deep.equal({ ok: false, reason: 'invalid' });
    for (let bit = 0; bit < TICKET_SIZE * 8; bit++) {
      const flipped = Buffer.from(good);
      flipped[bit >> 3]! ^= 1 << (bit & 7);
      expect(m.redeem(flipped), `bit ${bit}`).to.deep.equal({ ok: false, reason: 'invalid' });
    }
    // None of that used up the genuine ticket.
    expect(refusal(m.redeem(new Uint8Array(good)))).to.equal('ok');
    m.destroy();
  });

  it('owns its key, and once destroyed refuses to issue with a typed error', () => {
    const key = secretOf(KEY_BYTES);
    const m = new TicketManager({ key });
    expect(key.destroyed, 'the handle is consumed; the AEAD context holds the key').to.equal(true);
    const ticket = m.issue(randomMaster(), 1);
    m.destroy();
    expect(m.destroyed).to.equal(true);
    expectTyped(() => m.issue(randomMaster(), 1), 'ERR_QT_HANDLE_DESTROYED');
    expectTyped(() => m.rotateKey(), 'ERR_QT_HANDLE_DESTROYED');
    expect(m.redeem(ticket)).to.deep.equal({ ok: false, reason: 'invalid' });
    m.destroy(); // twice is fine
  });

  it('rejects bad arguments to issue, sealTicket and the constructor with typed errors', () => {
    const m = new TicketManager();
    const master = randomMaster();
    expectTyped(() => m.issue(Buffer.alloc(32) as unknown as crypto.Secret, 1), 'ERR_QT_INVALID_KEY');
    expectTyped(() => m.issue(secretOf(Buffer.alloc(16)), 1), 'ERR_QT_INVALID_KEY');
    const gone = randomMaster();
    gone.destroy();
    expectTyped(() => m.issue(gone, 1), 'ERR_QT_HANDLE_DESTROYED');
    for (const suite of [-1, 0x10000, 1.5, Number.NaN]) expectTyped(() => m.issue(master, suite), 'ERR_QT_INVALID_ARGUMENT');
    for (const at of [-1, 0.5, 2 ** 53]) expectTyped(() => m.issue(master, 1, at), 'ERR_QT_INVALID_ARGUMENT');
    const ctx = createAead(AeadSuite.AES_256_GCM, secretOf(KEY_BYTES));
    expectTyped(() => sealTicket(ctx, Buffer.alloc(11), Buffer.alloc(0), { version: 1, suite: 1, master, createdAt: 0 }), 'ERR_QT_INVALID_ARGUMENT');
    expectTyped(() => sealTicket(ctx, Buffer.alloc(12), Buffer.alloc(0), { version: 256, suite: 1, master, createdAt: 0 }), 'ERR_QT_INVALID_ARGUMENT');
    expectTyped(() => new TicketManager({ key: secretOf(Buffer.alloc(31)) }), 'ERR_QT_INVALID_KEY');
    expectTyped(() => new TicketManager({ lifetimeSeconds: -1 }), 'ERR_QT_INVALID_ARGUMENT');
    expectTyped(() => new TicketManager({ singleUseCapacity: 0 }), 'ERR_QT_INVALID_ARGUMENT');
    expectTyped(() => new TicketManager({ serverIdentity: 'x' as unknown as Uint8Array }), 'ERR_QT_INVALID_ARGUMENT');
    // issue copies the master natively: the caller's handle stays live and usable.
    m.issue(master, 1);
    expect(master.destroyed).to.equal(false);
    m.destroy();
    ctx.destroy();
  });
});
