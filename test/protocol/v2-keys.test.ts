/**
 * Pinned-key authentication (docs/PROTOCOL.md §13) through the Handshake interface: server-only
 * and mutual, in every group; a wrong pinned key, an unknown or missing client key, a relay
 * between two honest ends, identity hiding on the wire, changed key_auth bytes, reflection, and
 * a server rotating keys.
 */
import { createHash } from 'node:crypto';
import v8 from 'node:v8';
import vm from 'node:vm';
import { expect } from 'chai';
import { ErrorCode, QuantumTunnelError } from '../../lib/index.js';
import { CipherSuite } from '../../lib/protocol/constants.js';
import { AuthorizedPeers, fingerprintOf, IdentityKey, isFingerprint, parsePublicKeyLine, PublicIdentityKey } from '../../lib/identity/keys.js';
import { KEM_GROUPS, KemGroup, kemGroupById, type KemGroupSpec, SERVER_KEY_LABEL } from '../../lib/protocol/v2/groups.js';
import { ClientHandshakeV2, ServerHandshakeV2, type V2InitiatorOptions, type V2ResponderOptions } from '../../lib/protocol/v2/handshake.js';
import { ExtensionType } from '../../lib/protocol/v2/keyAuth.js';
import { decodeClientHelloV2, encodeClientHelloV2 } from '../../lib/protocol/v2/messages.js';
import { V2 } from '../../lib/protocol/versions.js';
import { native } from '../../lib/native.js';
import { mlkem1024 } from '../../lib/crypto/mlkem.js';
import { V2_VERSION_NUMBER } from '../../lib/protocol/v2/messages.js';
import { converse, frame, type Tamper, rejects } from '../helpers/handshakes.js';

const AES = CipherSuite.AES_256_GCM;
const permitted = KEM_GROUPS.filter((g) => g.permitted());
const defaultGroup = permitted[0]!.id === KemGroup.X25519_MLKEM1024 ? permitted[0]! : kemGroupById(KemGroup.P384_MLKEM1024)!;

function pair(client: Partial<V2InitiatorOptions>, server: Partial<V2ResponderOptions>, group: KemGroupSpec = defaultGroup) {
  return [
    new ClientHandshakeV2({ cipherSuites: [AES], groups: [group], ...client }),
    new ServerHandshakeV2({ cipherSuites: [AES], groups: KEM_GROUPS, ...server }),
  ] as const;
}


describe('protocol v2: pinned identity keys (§13)', function () {
  this.timeout(30000);
  const keys: IdentityKey[] = [];
  const key = (group: KemGroupSpec = defaultGroup) => {
    const k = IdentityKey.generate(group);
    keys.push(k);
    return k;
  };
  after(() => keys.forEach((k) => k.destroy()));

  describe('key text and fingerprints', () => {
    it('round-trips the one-line form with a comment, and the fingerprint is SHA-256 of BE16(group) ‖ key', () => {
      const k = key();
      const line = k.publicKey.toString('alice@laptop');
      expect(line.startsWith(`qtun-${defaultGroup.option} `)).to.equal(true);
      const parsed = parsePublicKeyLine(line);
      expect(parsed.comment).to.equal('alice@laptop');
      expect(parsed.key.equals(k.publicKey)).to.equal(true);
      expect(isFingerprint(k.fingerprint)).to.equal(true);
      expect(k.fingerprint).to.equal(fingerprintOf(defaultGroup, k.publicKey.bytes));
      // Known answer: the key of all-zero bytes in group 0x0101.
      const zero = Buffer.alloc(kemGroupById(KemGroup.X25519_MLKEM1024)!.clientShareSize);
      const blob = Buffer.concat([Buffer.of(0x01, 0x01), zero]);
      const expected = `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
      expect(fingerprintOf(kemGroupById(KemGroup.X25519_MLKEM1024)!, zero)).to.equal(expected);
    });

    it('refuses keys of the wrong size, unknown types and non-canonical base64', () => {
      const k = key();
      expect(() => PublicIdentityKey.fromBytes(defaultGroup, k.publicKey.bytes.subarray(1))).to.throw(QuantumTunnelError).with.property('code', ErrorCode.INVALID_KEY);
      expect(() => PublicIdentityKey.parse(`qtun-rsa ${k.publicKey.bytes.toString('base64')}`)).to.throw(QuantumTunnelError).with.property('code', ErrorCode.INVALID_KEY);
      expect(() => PublicIdentityKey.parse(`ssh-ed25519 AAAA`)).to.throw(QuantumTunnelError).with.property('code', ErrorCode.INVALID_KEY);
      const b64 = k.publicKey.bytes.toString('base64');
      expect(() => PublicIdentityKey.parse(`qtun-${defaultGroup.option} ${b64.slice(0, -4)}`)).to.throw(QuantumTunnelError);
    });

    it('authorized peers match by key or by fingerprint, and a fingerprint entry admits only its key', () => {
      const a = key();
      const b = key();
      const c = key();
      const peers = new AuthorizedPeers([a.publicKey.toString('a-key'), `${b.fingerprint} b-fingerprint`]);
      expect(peers.lookup(a.publicKey)?.comment).to.equal('a-key');
      expect(peers.lookup(b.publicKey)?.comment).to.equal('b-fingerprint');
      expect(peers.lookup(c.publicKey)).to.equal(undefined);
    });
  });

  describe('each long-term key is parsed once, not on every handshake', () => {
    /** Runs `fn` with native calls of `names` recorded (their arguments). */
    async function recording<T>(names: string[], fn: () => Promise<T> | T): Promise<{ result: T; calls: Map<string, unknown[][]> }> {
      const calls = new Map<string, unknown[][]>(names.map((n) => [n, []]));
      const saved = names.map((n) => (native as unknown as Record<string, (...a: unknown[]) => unknown>)[n]!);
      names.forEach((n, i) => {
        (native as unknown as Record<string, unknown>)[n] = (...a: unknown[]) => {
          calls.get(n)!.push(a);
          return saved[i]!.apply(native, a);
        };
      });
      try {
        return { result: await fn(), calls };
      } finally {
        names.forEach((n, i) => ((native as unknown as Record<string, unknown>)[n] = saved[i]));
      }
    }

    it('mutual handshakes encapsulate to parsed keys and hash no fingerprint', async () => {
      const server = key();
      const client = key();
      const options = () => pair({ serverKey: server.publicKey, identity: client }, { identities: [server], authorizedPeers: new AuthorizedPeers([client.publicKey]), requirePeerIdentity: true });
      await converse(...options()); // the first handshake parses both keys
      const { calls } = await recording(['mlkemEncapsulate', 'mlkemImportPublicKey', 'sha256'], async () => {
        for (let i = 0; i < 3; i++) await converse(...options());
      });
      // Per handshake one encapsulation to each long-term key, parsed; bytes only for ephemeral keys
      // (the key share from the wire, and in FIPS mode the pairwise test of our own share).
      const encapsulations = calls.get('mlkemEncapsulate')!;
      expect(encapsulations.filter(([, pk]) => !(pk instanceof Uint8Array))).to.have.length(6);
      const longTerm = [server, client].map((k) => k.publicKey.bytes.subarray(-mlkem1024.sizes.publicKey)); // both default groups use ML-KEM-1024
      expect(encapsulations.filter(([, pk]) => pk instanceof Uint8Array && longTerm.some((ek) => ek.equals(pk)))).to.have.length(0);
      expect(calls.get('mlkemImportPublicKey')).to.have.length(0);
      expect(calls.get('sha256')).to.have.length(0);
    });

    it('an encapsulation to a key whose bytes changed since it was parsed goes to the new bytes', () => {
      const target = key();
      const other = key();
      const publicKey = PublicIdentityKey.fromBytes(defaultGroup, target.publicKey.bytes);
      const version = V2_VERSION_NUMBER;
      defaultGroup.encapsulate(publicKey.bytes, version, undefined, SERVER_KEY_LABEL).secret.destroy(); // parsed and kept
      publicKey.bytes.set(other.publicKey.bytes); // a caller writing into the key's buffer
      const { share, secret } = defaultGroup.encapsulate(publicKey.bytes, version, undefined, SERVER_KEY_LABEL);
      const theirs = other.keyPair.decapsulate(share, version, SERVER_KEY_LABEL);
      try {
        expect(native.timingSafeEqual(secret, theirs)).to.equal(true);
      } finally {
        secret.destroy();
        theirs.destroy();
      }
    });

    it("a listed key comes back as the list's object; other keys, and keys sharing its tag, do not", () => {
      const listed = key();
      const unlisted = key();
      const peers = new AuthorizedPeers([listed.publicKey.toString('listed')]);
      const presented = PublicIdentityKey.fromBlob(listed.publicKey.blob);
      expect(peers.lookup(presented)?.comment).to.equal('listed');
      expect(presented).to.equal(PublicIdentityKey.fromBlob(listed.publicKey.blob));
      expect(presented.equals(listed.publicKey)).to.equal(true);
      // Not interned: a key no list holds (what any peer may send) is a new object every time.
      expect(PublicIdentityKey.fromBlob(unlisted.publicKey.blob)).to.not.equal(PublicIdentityKey.fromBlob(unlisted.publicKey.blob));
      // The same last 32 bytes (ML-KEM's rho) but another classical key: another key.
      const lookalike = Buffer.from(listed.publicKey.blob);
      lookalike[2]! ^= 1;
      const other = PublicIdentityKey.fromBlob(lookalike);
      expect(other).to.not.equal(presented);
      expect(other.bytes.equals(lookalike.subarray(2))).to.equal(true);
      expect(peers.lookup(other)).to.equal(undefined);
    });

    it('listed keys and their parsed ML-KEM keys go with the list: nothing else holds them', async () => {
      v8.setFlagsFromString('--expose-gc');
      const gc = vm.runInNewContext('gc') as () => void;
      let collected = 0;
      const watch = new FinalizationRegistry(() => collected++);
      (() => {
        const k = key();
        const peers = new AuthorizedPeers([k.publicKey.toString()]);
        const listed = peers.lookup(k.publicKey)!.key!;
        expect(listed).to.not.equal(k.publicKey);
        expect(PublicIdentityKey.fromBlob(k.publicKey.blob)).to.equal(listed);
        defaultGroup.encapsulate(listed.bytes, V2_VERSION_NUMBER, undefined, SERVER_KEY_LABEL).secret.destroy(); // parsed and kept
        watch.register(listed, 'listed');
        watch.register(listed.bytes, 'its bytes, the parsed key cache\'s key');
      })();
      for (let i = 0; i < 20 && collected < 2; i++) {
        gc();
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      expect(collected).to.equal(2);
    });

    it('a fingerprint entry keeps the key it admitted, and hands it back for the next handshakes', () => {
      const k = key();
      const stranger = key();
      const peers = new AuthorizedPeers([`${k.fingerprint} by-fingerprint`]);
      expect(peers.lookup(PublicIdentityKey.fromBlob(stranger.publicKey.blob))).to.equal(undefined);
      expect(PublicIdentityKey.fromBlob(stranger.publicKey.blob)).to.not.equal(PublicIdentityKey.fromBlob(stranger.publicKey.blob));
      const first = PublicIdentityKey.fromBlob(k.publicKey.blob);
      expect(PublicIdentityKey.fromBlob(k.publicKey.blob)).to.not.equal(first); // not admitted yet
      expect(peers.lookup(first)?.comment).to.equal('by-fingerprint');
      expect(PublicIdentityKey.fromBlob(k.publicKey.blob)).to.equal(first);
    });
  });

  for (const group of permitted) {
    it(`mutual authentication in ${group.option}: both ends learn the other's fingerprint and agree on keys`, async () => {
      const server = key(group);
      const client = key(group);
      const [ch, sh] = pair(
        { serverKey: server.publicKey, identity: client },
        { identities: [server], authorizedPeers: new AuthorizedPeers([client.publicKey.toString('laptop')]), requirePeerIdentity: true },
        group,
      );
      const [cr, sr] = await converse(ch, sh);
      expect(cr.peerIdentity).to.deep.equal({ type: 'key', fingerprint: server.fingerprint, group: group.option, comment: '' });
      expect(sr.peerIdentity).to.deep.equal({ type: 'key', fingerprint: client.fingerprint, group: group.option, comment: 'laptop' });
      expect(cr.sessionId.equals(sr.sessionId)).to.equal(true);
      const a = V2.session(cr, {});
      const b = V2.session(sr, {});
      try {
        expect(a.exportKeyingMaterial!('EXPORTER-test', undefined, 32).equals(b.exportKeyingMaterial!('EXPORTER-test', undefined, 32))).to.equal(true);
      } finally {
        a.destroy();
        b.destroy();
      }
    });
  }

  it('server-only: an anonymous client pins the server key; the server admits it when it requires no identity', async () => {
    const server = key();
    const [cr, sr] = await converse(...pair({ serverKey: server.publicKey }, { identities: [server] }));
    expect(cr.peerIdentity?.type).to.equal('key');
    expect(sr.peerIdentity).to.equal(undefined);
  });

  it('a client that pins the wrong key fails with ERR_QT_SERVER_KEY_MISMATCH at both ends', async () => {
    const server = key();
    const other = key();
    const [ch, sh] = pair({ serverKey: other.publicKey }, { identities: [server] });
    const err = await rejects(converse(ch, sh), ErrorCode.SERVER_KEY_MISMATCH);
    expect(err.message).to.match(/does not hold|pinned/);
  });

  it('a server without identity keys refuses a pinned-key client (SERVER_KEY_MISMATCH)', async () => {
    const server = key();
    await rejects(converse(...pair({ serverKey: server.publicKey }, {})), ErrorCode.SERVER_KEY_MISMATCH);
  });

  it('refuses an unknown client key, a missing one, and an anonymous hello, with ERR_QT_UNKNOWN_PEER', async () => {
    const server = key();
    const stranger = key();
    const friend = key();
    const policy = { identities: [server], authorizedPeers: new AuthorizedPeers([friend.publicKey]), requirePeerIdentity: true };
    await rejects(converse(...pair({ serverKey: server.publicKey, identity: stranger }, policy)), ErrorCode.UNKNOWN_PEER);
    await rejects(converse(...pair({ serverKey: server.publicKey }, policy)), ErrorCode.UNKNOWN_PEER);
    await rejects(converse(...pair({}, policy)), ErrorCode.UNKNOWN_PEER);
  });

  it('a server rotating keys accepts clients that pinned either key', async () => {
    const old = key();
    const next = key();
    for (const pinned of [old, next]) {
      const [cr] = await converse(...pair({ serverKey: pinned.publicKey }, { identities: [next, old] }));
      expect(cr.peerIdentity).to.include({ fingerprint: pinned.fingerprint });
    }
  });

  it('keys of another group than the key share work (a P-384 server key, an X25519 key share)', async function () {
    const x = kemGroupById(KemGroup.X25519_MLKEM1024)!;
    const p = kemGroupById(KemGroup.P384_MLKEM1024)!;
    if (!x.permitted()) this.skip();
    const server = key(p);
    const client = key(x);
    const [cr, sr] = await converse(...pair({ serverKey: server.publicKey, identity: client }, { identities: [server], authorizedPeers: new AuthorizedPeers([client.publicKey]) }, x));
    expect(cr.group.id).to.equal(x.id);
    expect(sr.peerIdentity).to.include({ fingerprint: client.fingerprint });
  });

  it('a passive observer sees neither public key nor fingerprint on the wire', async () => {
    const server = key();
    const client = key();
    const wire: Buffer[] = [];
    const record: Tamper = (_from, bytes) => {
      wire.push(Buffer.from(bytes));
      return bytes;
    };
    await converse(...pair({ serverKey: server.publicKey, identity: client }, { identities: [server], authorizedPeers: new AuthorizedPeers([client.publicKey]) }), record);
    const all = Buffer.concat(wire);
    for (const k of [server, client]) {
      // Any 32-byte window of either public key (its classical key, or its ML-KEM key) would show.
      for (let at = 0; at + 32 <= k.publicKey.bytes.length; at += 256) expect(all.includes(k.publicKey.bytes.subarray(at, at + 32))).to.equal(false);
      expect(all.includes(Buffer.from(k.fingerprint.slice(7), 'base64'))).to.equal(false);
    }
  });

  it('a changed bit anywhere in key_auth fails the handshake', async () => {
    const server = key();
    const client = key();
    for (const where of ['ciphertext', 'identity'] as const) {
      const tamper: Tamper = (from, bytes, index) => {
        if (from !== 'client' || index !== 0) return bytes;
        const hello = decodeClientHelloV2(frame(bytes).payload);
        const ext = hello.extensions.find((e) => e.type === ExtensionType.KEY_AUTH)!;
        const data = Buffer.from(ext.data);
        data[where === 'ciphertext' ? 40 : data.length - 3]! ^= 0x01;
        ext.data = data;
        return encodeClientHelloV2(hello);
      };
      const [ch, sh] = pair({ serverKey: server.publicKey, identity: client }, { identities: [server], authorizedPeers: new AuthorizedPeers([client.publicKey]) });
      await rejects(converse(ch, sh, tamper), ErrorCode.SERVER_KEY_MISMATCH);
    }
  });

  it("a changed ciphertext to the client's key: the client cannot open the server's flight", async () => {
    const server = key();
    const client = key();
    const tamper: Tamper = (from, bytes, index) => {
      if (from !== 'server' || index !== 1) return bytes;
      const out = Buffer.from(bytes);
      out[out.length - 20]! ^= 0x01; // inside the ServerHello's key_auth ciphertext (the last field but the extension list end)
      return out;
    };
    const [ch, sh] = pair({ serverKey: server.publicKey, identity: client }, { identities: [server], authorizedPeers: new AuthorizedPeers([client.publicKey]) });
    // Handshake keys the two ends do not share: under a pinned key, reported as the server not proving it.
    await rejects(converse(ch, sh, tamper), ErrorCode.SERVER_KEY_MISMATCH);
  });

  it('refuses key_auth together with PSK identities, and a malformed identity blob', async () => {
    const server = key();
    const addPsk: Tamper = (from, bytes, index) => {
      if (from !== 'client' || index !== 0) return bytes;
      const hello = decodeClientHelloV2(frame(bytes).payload);
      hello.pskIdentities = [{ identity: Buffer.from('site-a'), obfuscatedTicketAge: 0 }];
      hello.binders = [Buffer.alloc(48)];
      return encodeClientHelloV2(hello);
    };
    await rejects(converse(...pair({ serverKey: server.publicKey }, { identities: [server] }), addPsk), ErrorCode.HANDSHAKE_FAILED);
    // A client "key" of 5 bytes, sealed properly: the server finds it malformed.
    const c = new ClientHandshakeV2({ cipherSuites: [AES], groups: [defaultGroup], serverKey: server.publicKey, identity: { publicKey: { blob: Buffer.of(0x01, 0x01, 1, 2, 3) } } as never });
    await rejects(converse(c, new ServerHandshakeV2({ cipherSuites: [AES], groups: KEM_GROUPS, identities: [server], authorizedPeers: new AuthorizedPeers() })), ErrorCode.MALFORMED_MESSAGE);
  });

  it('a key-pinned session is not resumable (no tickets), whether or not the client presented a key', async () => {
    const server = key();
    const [cr, sr] = await converse(...pair({ serverKey: server.publicKey }, { identities: [server] }));
    expect(cr.resumable).to.equal(false);
    expect(sr.resumable).to.equal(false);
    const [ar] = await converse(...pair({}, { identities: [server] }));
    expect(ar.resumable).to.equal(true);
  });

  it('a relay that holds neither private key cannot complete either side', async () => {
    // The relay pins its own key towards the server, and answers the client with its own key.
    const server = key();
    const client = key();
    const relay = key();
    const clientSide = pair({ serverKey: server.publicKey, identity: client }, { identities: [relay] });
    await rejects(converse(...clientSide), ErrorCode.SERVER_KEY_MISMATCH);
    const serverSide = pair({ serverKey: server.publicKey, identity: relay }, { identities: [server], authorizedPeers: new AuthorizedPeers([client.publicKey]), requirePeerIdentity: true });
    await rejects(converse(...serverSide), ErrorCode.UNKNOWN_PEER);
  });

  it('reflection: a server answering its own pinned-key hello fails', async () => {
    // The client's hello is sent back to the client as if it were a ServerHello.
    const server = key();
    const c = new ClientHandshakeV2({ cipherSuites: [AES], groups: [defaultGroup], serverKey: server.publicKey });
    const first = await c.start();
    await rejects(c.receive(frame(first.send[0]!)), ErrorCode.UNEXPECTED_MESSAGE);
  });

  it('refuses configurations that cannot be right: identity without a server key, a PSK with keys', () => {
    const k = key();
    expect(() => new ClientHandshakeV2({ cipherSuites: [AES], groups: [defaultGroup], identity: k })).to.throw(QuantumTunnelError).with.property('code', ErrorCode.INVALID_ARGUMENT);
  });
});
