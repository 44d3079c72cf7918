/**
 * The one-call X25519 + ML-KEM steps (native/hybrid.cc, lib/crypto/hybrid.ts) against the
 * composed path of lib/protocol/v2/groups.ts (each primitive its own call, the combiner in JS,
 * which reproduces docs/PROTOCOL.md Appendix B): every pairing of a one-call side with a composed
 * side agrees on K, sync and threadpool forms alike, and every failure is a typed error.
 */
import { createHook } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { crypto, ErrorCode, QuantumTunnelError } from '../../lib/index.js';
import * as hybrid from '../../lib/crypto/hybrid.js';
import { cryptoPolicy } from '../../lib/crypto/policy.js';
import { HYBRID_LABEL, KemGroup, kemGroupById, SERVER_KEY_LABEL } from '../../lib/protocol/v2/groups.js';
import { native } from '../../lib/native.js';
import * as testing from '../../lib/testing.js';

const VERSION = 0x0200;
const X_GROUPS = [KemGroup.X25519_MLKEM1024, KemGroup.X25519_MLKEM768];
const out = (s: crypto.Secret) => testing.exportSecret(s).toString('hex');

function expectCode(f: () => unknown, code: string): void {
  expect(f).to.throw(QuantumTunnelError).with.property('code', code);
}

async function expectRejects(p: Promise<unknown>, code: string): Promise<void> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).to.be.instanceOf(QuantumTunnelError).with.property('code', code);
}

/** A composed (JS) client share from fixed inputs, so the one-call code path is not taken. */
function composedClientShare(id: number) {
  const group = kemGroupById(id)!;
  return group.generateClientShare({ classical: testing.x25519PrivateKeyFromBytes(randomBytes(32)), mlkemSeed: randomBytes(64) });
}

/** A composed server share from fixed inputs. */
function composedServerShare(id: number, clientShare: Buffer, label?: Uint8Array) {
  const group = kemGroupById(id)!;
  return group.encapsulate(clientShare, VERSION, { classical: testing.x25519PrivateKeyFromBytes(randomBytes(32)), coins: randomBytes(32) }, label);
}

describe('one-call hybrid exchange (X25519 + ML-KEM)', function () {
  before(function () {
    if (!hybrid.hybridAvailable()) this.skip(); // FIPS mode composes the primitives (tested below)
  });

  for (const id of X_GROUPS) {
    const group = kemGroupById(id)!;
    describe(group.displayName, () => {
      it('one-call server against a composed client: the same K, shares of the documented sizes', () => {
        const client = composedClientShare(id);
        const server = hybrid.hybridEncapsulate(id, VERSION, client.share, HYBRID_LABEL);
        expect(server.share.length).to.equal(group.serverShareSize);
        expect(out(client.finish(server.share, VERSION))).to.equal(out(server.secret));
      });

      it('one-call client against a composed server, sync and on the threadpool', async () => {
        for (const async of [false, true]) {
          const keys = async ? await hybrid.hybridClientShareAsync(id) : hybrid.hybridClientShare(id);
          expect(keys.share.length).to.equal(group.clientShareSize);
          expect(keys.share.subarray(0, 32).equals(crypto.x25519.publicKeyOf(keys.classical))).to.equal(true);
          const server = composedServerShare(id, keys.share);
          const k = async ? await hybrid.hybridDecapsulateAsync(id, VERSION, keys, server.share, HYBRID_LABEL) : hybrid.hybridDecapsulate(id, VERSION, keys, server.share, HYBRID_LABEL);
          expect(out(k)).to.equal(out(server.secret));
          // The keys stay the caller's: a second decapsulation of the same share gives the same K.
          expect(out(hybrid.hybridDecapsulate(id, VERSION, keys, server.share, HYBRID_LABEL))).to.equal(out(k));
          keys.classical.destroy();
          keys.mlkem.destroy();
        }
      });

      it('the threadpool server step equals the composed client; label and version are bound', async () => {
        const client = composedClientShare(id);
        const server = await hybrid.hybridEncapsulateAsync(id, VERSION, client.share, HYBRID_LABEL);
        expect(out(client.finish(server.share, VERSION))).to.equal(out(server.secret));
        const other = composedClientShare(id);
        const labelled = hybrid.hybridEncapsulate(id, VERSION, other.share, SERVER_KEY_LABEL);
        const keys = hybrid.hybridClientShare(id);
        const s = composedServerShare(id, keys.share, SERVER_KEY_LABEL);
        expect(out(hybrid.hybridDecapsulate(id, VERSION, keys, s.share, SERVER_KEY_LABEL))).to.equal(out(s.secret));
        expect(out(hybrid.hybridDecapsulate(id, VERSION + 1, keys, s.share, SERVER_KEY_LABEL))).to.not.equal(out(s.secret));
        expect(out(hybrid.hybridDecapsulate(id, VERSION, keys, s.share, HYBRID_LABEL))).to.not.equal(out(s.secret));
        labelled.secret.destroy();
        other.destroy();
      });

      it('the groups registry takes the one-call path in standard mode and still agrees with the composed one', () => {
        const client = group.generateClientShare(); // one call
        const server = composedServerShare(id, client.share);
        expect(out(client.finish(server.share, VERSION))).to.equal(out(server.secret));
        const composed = composedClientShare(id);
        const s = group.encapsulate(composed.share, VERSION); // one call
        expect(out(composed.finish(s.share, VERSION))).to.equal(out(s.secret));
        expectCode(() => client.finish(server.share, VERSION), ErrorCode.INVALID_STATE); // spent
      });

      it('a low-order X25519 key and an invalid encapsulation key are typed errors, sync and async', async () => {
        const keys = hybrid.hybridClientShare(id);
        const badServer = Buffer.alloc(group.serverShareSize); // all-zero X25519 point
        expectCode(() => hybrid.hybridDecapsulate(id, VERSION, keys, badServer, HYBRID_LABEL), ErrorCode.X25519_LOW_ORDER_POINT);
        await expectRejects(hybrid.hybridDecapsulateAsync(id, VERSION, keys, badServer, HYBRID_LABEL), ErrorCode.X25519_LOW_ORDER_POINT);
        const badClient = Buffer.from(keys.share);
        badClient.fill(0xff, 32); // coefficients ≥ q: fails the FIPS 203 modulus check
        expectCode(() => hybrid.hybridEncapsulate(id, VERSION, badClient, HYBRID_LABEL), ErrorCode.INVALID_KEY);
        await expectRejects(hybrid.hybridEncapsulateAsync(id, VERSION, badClient, HYBRID_LABEL), ErrorCode.INVALID_KEY);
        const zeroClassical = Buffer.from(keys.share);
        zeroClassical.fill(0, 0, 32);
        expectCode(() => hybrid.hybridEncapsulate(id, VERSION, zeroClassical, HYBRID_LABEL), ErrorCode.X25519_LOW_ORDER_POINT);
      });
    });
  }

  it('arguments: group, sizes, label, version, async flag, key kinds and destroyed keys are typed errors', () => {
    const id = KemGroup.X25519_MLKEM1024;
    const keys = hybrid.hybridClientShare(id);
    const server = composedServerShare(id, keys.share);
    const n = native;
    expectCode(() => n.hybridClientShare(KemGroup.P384_MLKEM1024, false), ErrorCode.INVALID_ARGUMENT);
    expectCode(() => n.hybridClientShare(0x0101, 'yes' as unknown as false), ErrorCode.INVALID_ARGUMENT);
    expectCode(() => n.hybridEncapsulate(id, VERSION, keys.share.subarray(1), HYBRID_LABEL, false), ErrorCode.INVALID_ARGUMENT);
    expectCode(() => n.hybridEncapsulate(id, 0x10000, keys.share, HYBRID_LABEL, false), ErrorCode.INVALID_ARGUMENT);
    expectCode(() => n.hybridEncapsulate(id, VERSION, keys.share, Buffer.alloc(0), false), ErrorCode.INVALID_ARGUMENT);
    expectCode(() => n.hybridEncapsulate(id, VERSION, keys.share, Buffer.alloc(65), false), ErrorCode.INVALID_ARGUMENT);
    expectCode(() => n.hybridDecapsulate(id, VERSION, keys.mlkem, keys.classical, keys.share, server.share, HYBRID_LABEL, false), ErrorCode.INVALID_KEY);
    expectCode(() => n.hybridDecapsulate(id, VERSION, keys.classical, keys.mlkem, keys.share, server.share.subarray(1), HYBRID_LABEL, false), ErrorCode.INVALID_ARGUMENT);
    // ML-KEM-768 key for the ML-KEM-1024 group.
    const other = hybrid.hybridClientShare(KemGroup.X25519_MLKEM768);
    expectCode(() => n.hybridDecapsulate(id, VERSION, keys.classical, other.mlkem, keys.share, server.share, HYBRID_LABEL, false), ErrorCode.INVALID_KEY);
    keys.mlkem.destroy();
    expectCode(() => hybrid.hybridDecapsulate(id, VERSION, keys, server.share, HYBRID_LABEL), ErrorCode.HANDLE_DESTROYED);
    keys.classical.destroy();
    other.classical.destroy();
    other.mlkem.destroy();
  });

  it('JS that runs while a job is created (an async_hooks init hook) cannot reach its inputs: they are copied first', async () => {
    const id = KemGroup.X25519_MLKEM1024;
    const keys = hybrid.hybridClientShare(id);
    const server = composedServerShare(id, keys.share);
    const serverShare = Buffer.from(server.share);
    const mlkemKey = crypto.mlkem1024.generateKeyPair();
    const enc = crypto.mlkem1024.encapsulate(mlkemKey.publicKey);
    let onInit: (() => void) | undefined;
    const hook = createHook({
      init() {
        const f = onInit;
        onInit = undefined;
        f?.();
      },
    }).enable();
    try {
      // Everything the pending call was given, destroyed or changed before the job could run.
      onInit = () => {
        keys.classical.destroy();
        keys.mlkem.destroy();
        serverShare.fill(0);
      };
      const k = hybrid.hybridDecapsulateAsync(id, VERSION, keys, serverShare, HYBRID_LABEL);
      expect(onInit, 'the hook ran during the call').to.equal(undefined);
      const expectedSecret = out(enc.sharedSecret);
      const ciphertext = Buffer.from(enc.ciphertext);
      onInit = () => {
        mlkemKey.privateKey.destroy();
        enc.ciphertext.fill(0);
      };
      const z = crypto.mlkem1024.decapsulateAsync(mlkemKey.privateKey, enc.ciphertext);
      expect(onInit, 'the hook ran during the call').to.equal(undefined);
      expect(out(await k)).to.equal(out(server.secret));
      expect(out(await z)).to.equal(expectedSecret);
      expect(ciphertext.equals(enc.ciphertext)).to.equal(false); // the hook did change it
    } finally {
      hook.disable();
    }
  });

  it('destroying the keys while the threadpool step runs is safe: the job holds its own references', async () => {
    const id = KemGroup.X25519_MLKEM1024;
    const keys = hybrid.hybridClientShare(id);
    const server = composedServerShare(id, keys.share);
    const pending = hybrid.hybridDecapsulateAsync(id, VERSION, keys, server.share, HYBRID_LABEL);
    keys.classical.destroy();
    keys.mlkem.destroy();
    expect(out(await pending)).to.equal(out(server.secret));
  });
});

describe('one-call hybrid exchange in FIPS mode', function () {
  before(function () {
    if (!cryptoPolicy.fips) this.skip();
  });

  it('refuses to run (ERR_QT_INVALID_STATE): FIPS mode composes the primitives with their tests', () => {
    expect(hybrid.hybridAvailable()).to.equal(false);
    expectCode(() => native.hybridClientShare(KemGroup.X25519_MLKEM1024, false), ErrorCode.INVALID_STATE);
  });
});
