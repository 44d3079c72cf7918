/**
 * Session and handshake paths a hostile or unusual peer reaches that the wider tests do not: a v1
 * rekey to a public key we cannot encapsulate to, a fatal alert asked of a session already
 * destroyed, and an anonymous client of a pinned-key server that authorizes clients by key but
 * does not require them, and a pinned key whose ML-KEM half fails the FIPS 203 check.
 */
import { expect } from 'chai';
import { crypto, ErrorCode, QuantumTunnelError } from '../../lib/index.js';
import { qtError } from '../../lib/errors.js';
import { AuthorizedPeers, IdentityKey, PublicIdentityKey } from '../../lib/identity/keys.js';
import { CipherSuite, MessageType } from '../../lib/protocol/constants.js';
import { FrameReader } from '../../lib/protocol/frame.js';
import type { HandshakeResult } from '../../lib/protocol/handshake.js';
import { encodeRekeyPayload } from '../../lib/protocol/messages.js';
import { SecureSession } from '../../lib/protocol/session.js';
import { kemGroupById, KemGroup } from '../../lib/protocol/v2/groups.js';
import { ClientHandshakeV2, ServerHandshakeV2 } from '../../lib/protocol/v2/handshake.js';
import { V2_VERSION_NUMBER } from '../../lib/protocol/v2/messages.js';
import { SessionV2 } from '../../lib/protocol/v2/session.js';
import * as testing from '../../lib/testing.js';
import { converse } from '../helpers/handshakes.js';

const AES = CipherSuite.AES_256_GCM;
const group = kemGroupById(KemGroup.X25519_MLKEM1024)!;

function onlyFrame(bytes: Buffer) {
  const r = new FrameReader();
  r.push(Buffer.from(bytes));
  return r.nextFrame()!;
}

/** Two v1 sessions over the same fresh keys, as a handshake leaves them. */
function v1Pair(): { client: SecureSession; server: SecureSession } {
  const copy = (s: crypto.Secret) => testing.secretFromBytes(testing.exportSecret(s));
  const master = crypto.randomSecret(32);
  const i2r = crypto.randomSecret(32);
  const r2i = crypto.randomSecret(32);
  const base = { suite: AES, sessionId: Buffer.alloc(16, 1), resumed: false } as const;
  const c = { ...base, role: 'initiator', master: copy(master), sendKey: copy(i2r), receiveKey: copy(r2i) } as HandshakeResult;
  const s = { ...base, role: 'responder', master, sendKey: r2i, receiveKey: i2r } as HandshakeResult;
  return { client: new SecureSession(c), server: new SecureSession(s) };
}

describe('session edges', () => {
  it('v1: a Rekey request whose X25519 half is a low-order point is REKEY_FAILED at the responder, not a crash', () => {
    const { client, server } = v1Pair();
    try {
      // All zeros: a valid ML-KEM encapsulation key (every coefficient below q), but the X25519
      // half gives an all-zero shared secret, which the encapsulation refuses.
      const record = client.sealRecords(MessageType.REKEY, [encodeRekeyPayload(Buffer.alloc(1600), 10n)]);
      let caught: unknown;
      try {
        server.receive(onlyFrame(record));
      } catch (err) {
        caught = err;
      }
      expect(caught).to.be.instanceOf(QuantumTunnelError);
      expect((caught as QuantumTunnelError).code).to.equal(ErrorCode.REKEY_FAILED);
      expect(((caught as Error).cause as QuantumTunnelError).code).to.equal(ErrorCode.X25519_LOW_ORDER_POINT);
    } finally {
      client.destroy();
      server.destroy();
    }
  });

  it('v2: a fatal alert asked of a destroyed session is empty (nothing left to seal it with), not an exception', async () => {
    const [cr, sr] = await converse(new ClientHandshakeV2({ cipherSuites: [AES], groups: [group] }), new ServerHandshakeV2({ cipherSuites: [AES], groups: [group] }));
    const c = new SessionV2(cr);
    const s = new SessionV2(sr);
    const alert = c.fatalAlert(qtError(ErrorCode.HANDSHAKE_FAILED, 'x'));
    expect(alert.length).to.be.greaterThan(0);
    c.destroy();
    s.destroy();
    expect(c.fatalAlert(qtError(ErrorCode.HANDSHAKE_FAILED, 'x')).length).to.equal(0);
  });

  it('v2 pinned keys: a server that authorizes clients by key but does not require one admits a client without a key, anonymously', async () => {
    const server = IdentityKey.generate(group);
    const friend = IdentityKey.generate(group);
    try {
      const [cr, sr] = await converse(
        new ClientHandshakeV2({ cipherSuites: [AES], groups: [group], serverKey: server.publicKey }),
        new ServerHandshakeV2({ cipherSuites: [AES], groups: [group], identities: [server], authorizedPeers: new AuthorizedPeers([friend.publicKey]) }),
      );
      expect(cr.peerIdentity).to.deep.include({ type: 'key', fingerprint: server.publicKey.fingerprint });
      expect(sr.peerIdentity).to.equal(undefined);
      expect(sr.resumable).to.equal(false); // pinned-key sessions never resume from tickets
      for (const r of [cr, sr]) for (const x of [r.clientTrafficSecret, r.serverTrafficSecret, r.exporterSecret, r.resumptionSecret]) x.destroy();
    } finally {
      server.destroy();
      friend.destroy();
    }
  });

  it('a pinned key of the right size whose ML-KEM half fails the FIPS 203 modulus check is refused at encapsulation (INVALID_KEY)', () => {
    // Keys are checked for size when read; the modulus check happens at the first encapsulation.
    const valid = IdentityKey.generate(group);
    try {
      const bytes = Buffer.from(valid.publicKey.bytes);
      bytes.fill(0xff, 32); // every ML-KEM coefficient 4095 >= q
      const bad = PublicIdentityKey.fromBytes(group, bytes);
      let caught: unknown;
      try {
        group.encapsulate(bad.bytes, V2_VERSION_NUMBER).secret.destroy();
      } catch (err) {
        caught = err;
      }
      expect((caught as QuantumTunnelError).code).to.equal(ErrorCode.INVALID_KEY);
      // The valid key still encapsulates: the failure left nothing behind.
      const ok = group.encapsulate(valid.publicKey.bytes, V2_VERSION_NUMBER);
      expect(ok.share.length).to.equal(group.serverShareSize);
      ok.secret.destroy();
    } finally {
      valid.destroy();
    }
  });
});
