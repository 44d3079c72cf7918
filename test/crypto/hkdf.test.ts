/**
 * HKDF (RFC 5869), HMAC-SHA-384 (RFC 4231) and SHA-384 (FIPS 180-4) through the addon, secrets in
 * and out as handles. Known answers are copied into test/fixtures with their sources; HKDF-SHA-384
 * is also checked against node:crypto's hkdfSync as an independent implementation (test only).
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crypto } from '../../lib/index.js';
import { addonPath, native, type Secret } from '../../lib/native.js';
import * as testing from '../../lib/testing.js';
import { detach, expectCode, own, withGetter } from '../helpers/buffers.js';
import { runChild } from '../helpers/child.js';
import { hex, loadFixture } from '../helpers/fixtures.js';

const { hkdf } = crypto;
const { SHA256, SHA384 } = hkdf.HkdfDigest;
const INVALID = 'ERR_QT_INVALID_ARGUMENT';
const INVALID_KEY = 'ERR_QT_INVALID_KEY';
const DESTROYED = 'ERR_QT_HANDLE_DESTROYED';

const RFC5869 = loadFixture('rfc5869.json');
const RFC4231 = loadFixture('rfc4231-hmac-sha384.json');
const SHA384_KAT = loadFixture('sha384.json');
const WYCHEPROOF = loadFixture('wycheproof-hkdf-sha384.json');


const bytesOf = (s: Secret): string => testing.exportSecret(s).toString('hex');
const secret = (h: string | Uint8Array): Secret => testing.secretFromBytes(typeof h === 'string' ? hex(h) : h);



/** Reference HKDF-SHA-384/256 from node:crypto (independent of the addon's OpenSSL). */
function nodeHkdf(hash: 'sha256' | 'sha384', ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): string {
  return Buffer.from(hkdfSync(hash, ikm, salt, info, length)).toString('hex');
}

describe('HKDF (RFC 5869) with secret handles', () => {
  it('exports the digests and sizes from the addon', () => {
    expect(hkdf.HkdfDigest).to.deep.equal({ SHA256: native.hkdfDigests.SHA256, SHA384: native.hkdfDigests.SHA384 });
    expect(hkdf.HASH_LENGTH).to.deep.equal({ SHA256: 32, SHA384: 48 });
    expect(hkdf.maxExpandLength(SHA256)).to.equal(255 * 32);
    expect(hkdf.maxExpandLength(SHA384)).to.equal(255 * 48);
    expect(crypto.SHA384_SIZE).to.equal(48);
  });

  it('RFC 5869 Appendix A test cases 1-3 (SHA-256): PRK and OKM', () => {
    expect(RFC5869.cases).to.have.length(3);
    for (const c of RFC5869.cases) {
      const prk = hkdf.extract(SHA256, hex(c.saltHex), [hex(c.ikmHex)]);
      expect(crypto.isSecret(prk)).to.equal(true);
      expect(prk.length).to.equal(32);
      expect(bytesOf(prk), c.name).to.equal(c.prkHex);
      const okm = hkdf.expand(SHA256, prk, hex(c.infoHex), c.length);
      expect(crypto.isSecret(okm)).to.equal(true);
      expect(bytesOf(okm), c.name).to.equal(c.okmHex);
    }
  });

  it('the same PRK whatever the split of the IKM into byte and Secret parts, and with a Secret salt', () => {
    const c = RFC5869.cases[1];
    const ikm = hex(c.ikmHex);
    const splits: Array<Array<Uint8Array | Secret>> = [
      [ikm.subarray(0, 32), secret(ikm.subarray(32, 64)), ikm.subarray(64)],
      [secret(ikm.subarray(0, 1)), secret(ikm.subarray(1))],
      [new Uint8Array(0), secret(ikm), new Uint8Array(0)],
    ];
    for (const parts of splits) expect(bytesOf(hkdf.extract(SHA256, secret(c.saltHex), parts))).to.equal(c.prkHex);
  });

  it('null salt is HashLen zeros (RFC 5869 §2.2), and so is an empty salt (test case 3)', () => {
    const c = RFC5869.cases[2];
    expect(c.saltHex).to.equal('');
    expect(bytesOf(hkdf.extract(SHA256, null, [hex(c.ikmHex)]))).to.equal(c.prkHex);
    expect(bytesOf(hkdf.extract(SHA256, Buffer.alloc(32), [hex(c.ikmHex)]))).to.equal(c.prkHex);
    const ikm = randomBytes(48);
    const zeros = bytesOf(hkdf.extract(SHA384, Buffer.alloc(48), [ikm]));
    expect(bytesOf(hkdf.extract(SHA384, null, [ikm]))).to.equal(zeros);
    expect(bytesOf(hkdf.extract(SHA384, new Uint8Array(0), [ikm]))).to.equal(zeros);
    expect(bytesOf(hkdf.extract(SHA384, secret(Buffer.alloc(0)), [ikm]))).to.equal(zeros);
  });

  it('an empty IKM is HMAC(salt, "") (RFC 5869 does not forbid it)', () => {
    const salt = randomBytes(48);
    expect(bytesOf(hkdf.extract(SHA384, salt, []))).to.equal(createHmac('sha384', salt).update(Buffer.alloc(0)).digest('hex'));
  });

  it(`Wycheproof HKDF-SHA-384 (${WYCHEPROOF.tests.length} cases copied from hkdf_sha384_test.json, extract then expand)`, () => {
    const valid = WYCHEPROOF.tests.filter((t: { result: string }) => t.result === 'valid');
    expect(valid.length).to.be.greaterThanOrEqual(10);
    for (const t of valid) {
      const prk = hkdf.extract(SHA384, t.salt === '' ? null : hex(t.salt), [hex(t.ikm)]);
      expect(prk.length).to.equal(48);
      expect(bytesOf(hkdf.expand(SHA384, prk, hex(t.info), t.size)), `tcId ${t.tcId}`).to.equal(t.okm);
    }
    expect(valid.some((t: { size: number }) => t.size === 255 * 48)).to.equal(true);
  });

  it('Wycheproof SizeTooLarge (255·HashLen + 1) is refused', () => {
    const invalid = WYCHEPROOF.tests.filter((t: { result: string }) => t.result === 'invalid');
    expect(invalid).to.have.length.greaterThan(0);
    for (const t of invalid) {
      const prk = hkdf.extract(SHA384, hex(t.salt), [hex(t.ikm)]);
      expectCode(() => hkdf.expand(SHA384, prk, hex(t.info), t.size), INVALID);
      expectCode(() => native.hkdfExpand(SHA384, prk, hex(t.info), t.size), INVALID);
    }
  });

  it('HKDF-SHA-384 agrees with node:crypto hkdfSync (an independent implementation) on random inputs', () => {
    for (let i = 0; i < 50; i++) {
      const ikm = [randomBytes(32), randomBytes(48), randomBytes(i * 7)];
      const salt = i % 5 === 0 ? Buffer.alloc(0) : randomBytes(1 + ((i * 13) % 200));
      const info = randomBytes((i * 31) % 600);
      const length = 1 + ((i * 97) % (255 * 48));
      const prk = hkdf.extract(SHA384, salt, [ikm[0]!, secret(ikm[1]!), ikm[2]!]);
      expect(bytesOf(hkdf.expand(SHA384, prk, info, length))).to.equal(nodeHkdf('sha384', Buffer.concat(ikm), salt, info, length));
    }
  });

  it('a TLS 1.3-shaped schedule: a Derive-Secret output as the next salt, two secrets as IKM', () => {
    const early = hkdf.extract(SHA384, null, [Buffer.alloc(48)]);
    const derived = hkdf.expand(SHA384, early, Buffer.from('derived'), 48);
    const [ss1, ss2] = [randomBytes(32), randomBytes(48)];
    const handshake = hkdf.extract(SHA384, derived, [secret(ss1), secret(ss2)]);
    const ref = createHmac('sha384', testing.exportSecret(derived)).update(Buffer.concat([ss1, ss2])).digest('hex');
    expect(bytesOf(handshake)).to.equal(ref);
  });

  it('expand: lengths 1 and 255·HashLen; outputs are prefixes of one another', () => {
    const prk = hkdf.extract(SHA384, null, [randomBytes(48)]);
    const long = testing.exportSecret(hkdf.expand(SHA384, prk, Buffer.from('x'), 255 * 48));
    expect(long).to.have.length(255 * 48);
    expect(bytesOf(hkdf.expand(SHA384, prk, Buffer.from('x'), 1))).to.equal(long.subarray(0, 1).toString('hex'));
    expect(bytesOf(hkdf.expand(SHA384, prk, Buffer.from('x'), 100))).to.equal(long.subarray(0, 100).toString('hex'));
  });

  it('refuses bad arguments with typed errors (JS wrapper and native)', () => {
    const prk = hkdf.extract(SHA384, null, [randomBytes(48)]);
    for (const d of [0, 3, 1.5, '2', null, undefined, { valueOf: () => 2 }]) {
      expectCode(() => hkdf.extract(d as never, null, [Buffer.alloc(1)]), INVALID);
      expectCode(() => native.hkdfExtract(d as never, null, [Buffer.alloc(1)]), INVALID);
      expectCode(() => native.hkdfExpand(d as never, prk, Buffer.alloc(0), 32), INVALID);
      expectCode(() => native.hmac(d as never, prk, []), INVALID);
    }
    for (const salt of [undefined, 'salt', 5, {}, [Buffer.alloc(1)], new Uint16Array(4)]) {
      expectCode(() => hkdf.extract(SHA384, salt as never, [Buffer.alloc(1)]), INVALID);
      expectCode(() => native.hkdfExtract(SHA384, salt as never, [Buffer.alloc(1)]), INVALID);
    }
    for (const ikm of [Buffer.alloc(1), 'ikm', null, [Buffer.alloc(1), 'x'], [{}], [new Uint32Array(1)]]) {
      expectCode(() => hkdf.extract(SHA384, null, ikm as never), INVALID);
      expectCode(() => native.hkdfExtract(SHA384, null, ikm as never), INVALID);
    }
    expectCode(() => hkdf.extract(SHA384, null, [Buffer.alloc(hkdf.MAX_KEY_INPUT_LENGTH), Buffer.alloc(1)]), INVALID);
    expectCode(() => native.hkdfExtract(SHA384, null, [Buffer.alloc(hkdf.MAX_KEY_INPUT_LENGTH), Buffer.alloc(1)]), INVALID);
    expectCode(() => native.hkdfExtract(SHA384, Buffer.alloc(hkdf.MAX_KEY_INPUT_LENGTH + 1), []), INVALID);
    for (const length of [0, -1, 255 * 48 + 1, 1.5, NaN, '32', { valueOf: () => 32 }]) {
      expectCode(() => hkdf.expand(SHA384, prk, Buffer.alloc(0), length as never), INVALID);
      expectCode(() => native.hkdfExpand(SHA384, prk, Buffer.alloc(0), length as never), INVALID);
    }
    expectCode(() => hkdf.expand(SHA256, prk, Buffer.alloc(0), 255 * 32 + 1), INVALID);
    expectCode(() => native.hkdfExpand(SHA256, prk, Buffer.alloc(0), 255 * 32 + 1), INVALID);
    for (const info of ['info', null, [1], new Int8Array(2)]) {
      expectCode(() => hkdf.expand(SHA384, prk, info as never, 32), INVALID);
      expectCode(() => native.hkdfExpand(SHA384, prk, info as never, 32), INVALID);
    }
    expectCode(() => hkdf.expand(SHA384, prk, Buffer.alloc(hkdf.MAX_INFO_LENGTH + 1), 32), INVALID);
    expectCode(() => native.hkdfExpand(SHA384, prk, Buffer.alloc(hkdf.MAX_INFO_LENGTH + 1), 32), INVALID);
    expect(hkdf.expand(SHA384, prk, Buffer.alloc(hkdf.MAX_INFO_LENGTH), 32).length).to.equal(32);
    // A PRK is a secret handle of at least HashLen bytes (RFC 5869 §2.3).
    for (const bad of [Buffer.alloc(48), {}, null]) {
      expectCode(() => hkdf.expand(SHA384, bad as never, Buffer.alloc(0), 32), INVALID);
      expectCode(() => native.hkdfExpand(SHA384, bad as never, Buffer.alloc(0), 32), INVALID);
    }
    expectCode(() => hkdf.expand(SHA384, secret(Buffer.alloc(47)), Buffer.alloc(0), 32), INVALID_KEY);
    expect(hkdf.expand(SHA256, secret(Buffer.alloc(32, 1)), Buffer.alloc(0), 32).length).to.equal(32);
  });

  it('destroyed handles: ERR_QT_HANDLE_DESTROYED for a PRK, a salt and an IKM part', () => {
    const dead = secret(Buffer.alloc(48, 1));
    dead.destroy();
    expectCode(() => hkdf.expand(SHA384, dead, Buffer.alloc(0), 32), DESTROYED);
    expectCode(() => hkdf.extract(SHA384, dead, [Buffer.alloc(32)]), DESTROYED);
    expectCode(() => hkdf.extract(SHA384, null, [Buffer.alloc(32), dead]), DESTROYED);
    expectCode(() => native.hkdfExtract(SHA384, null, [dead]), DESTROYED);
  });

  it('outputs are independent handles whose destroy() cleanses them', () => {
    const prk = hkdf.extract(SHA384, null, [randomBytes(48)]);
    const okm = hkdf.expand(SHA384, prk, Buffer.from('k'), 32);
    prk.destroy();
    expect(okm.destroyed).to.equal(false);
    expect(testing.secretStorage(prk).every((b) => b === 0)).to.equal(true);
    okm.destroy();
    expect(testing.secretStorage(okm).every((b) => b === 0)).to.equal(true);
  });
});

describe('HKDF in one call: hkdf, derived salts, several outputs, finished keys, record keys', () => {
  it('hkdf() is Expand(Extract()) (RFC 5869 A.1-A.3 OKM) and Wycheproof HKDF-SHA-384', () => {
    for (const c of RFC5869.cases) {
      const okm = hkdf.hkdf(SHA256, c.saltHex === '' ? null : hex(c.saltHex), [hex(c.ikmHex)], hex(c.infoHex), c.length);
      expect(bytesOf(okm), c.name).to.equal(c.okmHex);
    }
    for (const w of WYCHEPROOF.tests.filter((t: { result: string }) => t.result === 'valid').slice(0, 20)) {
      expect(bytesOf(hkdf.hkdf(SHA384, hex(w.salt), [hex(w.ikm)], hex(w.info), w.size)), `tcId ${w.tcId}`).to.equal(w.okm);
    }
  });

  it('extractWithDerivedSalt(s, info, ikm) = extract(expand(s, info, HashLen), ikm), checked against node:crypto', () => {
    for (const [digest, name, len] of [[SHA384, 'sha384', 48], [SHA256, 'sha256', 32]] as const) {
      const prev = randomBytes(len);
      const info = randomBytes(30);
      const ikm = [randomBytes(32), randomBytes(17)];
      // node's hkdfSync always extracts: Expand(prev, info, HashLen) is T(1) = HMAC(prev, info ‖ 0x01).
      const t1 = createHmac(name, prev).update(Buffer.concat([info, Buffer.of(1)])).digest().subarray(0, len);
      const expected = createHmac(name, t1).update(Buffer.concat(ikm)).digest('hex');
      expect(bytesOf(hkdf.extractWithDerivedSalt(digest, secret(prev), info, [ikm[0]!, secret(ikm[1]!)]))).to.equal(expected);
    }
  });

  it('expandSecrets() gives each expand() output, in order, as independent handles', () => {
    const prk = secret(randomBytes(48));
    const infos = [Buffer.from('one'), Buffer.alloc(0), randomBytes(200)];
    const lengths = [48, 12, 100];
    const many = hkdf.expandSecrets(SHA384, prk, infos, lengths);
    expect(many.map(bytesOf)).to.deep.equal(infos.map((info, i) => bytesOf(hkdf.expand(SHA384, prk, info, lengths[i]!))));
    many[0]!.destroy();
    expect(many[1]!.destroyed).to.equal(false);
    expectCode(() => hkdf.expandSecrets(SHA384, prk, [], []), INVALID);
    expectCode(() => hkdf.expandSecrets(SHA384, prk, [Buffer.alloc(1)], [48, 48]), INVALID);
    expectCode(() => hkdf.expandSecrets(SHA384, prk, Array(hkdf.MAX_EXPAND_OUTPUTS + 1).fill(Buffer.alloc(1)), Array(hkdf.MAX_EXPAND_OUTPUTS + 1).fill(1)), INVALID);
    expectCode(() => hkdf.expandSecrets(SHA384, prk, [Buffer.alloc(1)], [0]), INVALID);
    expectCode(() => native.hkdfExpandSecrets(SHA384, prk, [secret(Buffer.alloc(4)) as unknown as Uint8Array], [4]), INVALID);
    expectCode(() => native.hkdfExpandSecrets(SHA384, secret(Buffer.alloc(47)), [Buffer.alloc(1)], [4]), INVALID_KEY);
  });

  it('hmac()/hmacVerify() with keyInfo use Expand(key, keyInfo, HashLen) as the key (a Finished MAC)', () => {
    const base = secret(randomBytes(48));
    const info = Buffer.from('finished label');
    const key = hkdf.expand(SHA384, base, info, 48);
    const data = [randomBytes(48)];
    const mac = hkdf.hmac(SHA384, base, data, info);
    expect(mac.toString('hex')).to.equal(hkdf.hmac(SHA384, key, data).toString('hex'));
    expect(hkdf.hmacVerify(SHA384, base, data, mac, info)).to.equal(true);
    expect(hkdf.hmacVerify(SHA384, base, data, mac, Buffer.from('other label'))).to.equal(false);
    expect(hkdf.hmacVerify(SHA384, key, data, mac)).to.equal(true);
    expectCode(() => native.hmac(SHA384, secret(Buffer.alloc(32)), data, info), INVALID_KEY);
  });

  it('expandRecordAead() seals as a record context keyed with expand(secret, keyInfo, 32) and IV expand(secret, ivInfo, 12)', () => {
    const traffic = secret(randomBytes(48));
    const keyInfo = Buffer.from('key label');
    const ivInfo = Buffer.from('iv label');
    const fromSecret = hkdf.expandRecordAead(SHA384, traffic, crypto.AeadSuite.AES_256_GCM, keyInfo, ivInfo);
    const explicit = crypto.createRecordAead(crypto.AeadSuite.AES_256_GCM, hkdf.expand(SHA384, traffic, keyInfo, 32), hkdf.expand(SHA384, traffic, ivInfo, 12));
    expect(fromSecret.hasIv).to.equal(true);
    const plaintext = randomBytes(100);
    const aad = Buffer.from('header');
    for (const seq of [0, 1, 2 ** 40]) {
      const a = Buffer.alloc(116);
      const b = Buffer.alloc(116);
      fromSecret.sealRecord(a, 0, seq, aad, plaintext);
      explicit.sealRecord(b, 0, seq, aad, plaintext);
      expect(a.toString('hex')).to.equal(b.toString('hex'));
    }
    expectCode(() => native.hkdfExpandAead(SHA384, traffic, 99, keyInfo, ivInfo), 'ERR_QT_UNSUPPORTED_ALGORITHM');
    expectCode(() => native.hkdfExpandAead(SHA384, secret(Buffer.alloc(16)), crypto.AeadSuite.AES_256_GCM, keyInfo, ivInfo), INVALID_KEY);
  });

  it('a running SHA-384 digests every prefix without ending: the same as sha384() of that prefix', () => {
    const h = new crypto.Sha384Hash();
    const messages = [randomBytes(1600), Buffer.alloc(0), randomBytes(33), randomBytes(5000)];
    const seen: Buffer[] = [];
    expect(h.digest().toString('hex')).to.equal(crypto.sha384([]).toString('hex'));
    for (const m of messages) {
      seen.push(m);
      h.update(m);
      expect(h.digest().toString('hex')).to.equal(crypto.sha384(seen).toString('hex'));
    }
    expectCode(() => h.update('text' as unknown as Uint8Array), INVALID);
    const gone = own(Buffer.alloc(64));
    detach(gone.buffer);
    expectCode(() => new native.Sha384Hash().update(gone), INVALID);
  });

  it('re-entrancy: an infos getter that destroys the PRK, a lengths getter that detaches an info: typed errors', () => {
    const prk = secret(Buffer.alloc(48, 7));
    expectCode(() => native.hkdfExpandSecrets(SHA384, prk, withGetter([own('a'), own('b')], 1, () => prk.destroy()), [4, 4]), DESTROYED);
    const info = own(Buffer.alloc(1 << 20, 1));
    expectCode(() => native.hkdfExpandSecrets(SHA384, secret(Buffer.alloc(48)), [info, own('b')], withGetter([4, 4], 1, () => detach(info.buffer))), INVALID);
    const salt = secret(Buffer.alloc(48, 2));
    expectCode(() => native.hkdfExtract(SHA384, salt, withGetter([own('a'), own('b')], 1, () => salt.destroy()), own('info')), DESTROYED);
    const hkdfInfo = own(Buffer.alloc(1 << 20, 3));
    expectCode(() => native.hkdf(SHA384, null, withGetter([own('a'), own('b')], 1, () => detach(hkdfInfo.buffer)), hkdfInfo, 48), INVALID);
  });
});

describe('HMAC-SHA-384 (RFC 4231) and SHA-384 (FIPS 180-4)', () => {
  it(`RFC 4231 test cases 1-7 (HMAC-SHA-384; case 5 checks the 128-bit truncation as a prefix)`, () => {
    expect(RFC4231.cases).to.have.length(7);
    for (const c of RFC4231.cases) {
      const key = secret(c.keyHex);
      const data = hex(c.dataHex);
      const mac = hkdf.hmac(SHA384, key, [data]);
      expect(mac).to.have.length(48);
      if (c.truncatedTo) {
        expect(mac.subarray(0, c.truncatedTo).toString('hex'), c.name).to.equal(c.macHex);
        // Only a full tag verifies: a truncated one is a different length.
        expect(hkdf.hmacVerify(SHA384, key, [data], hex(c.macHex))).to.equal(false);
        expect(hkdf.hmacVerify(SHA384, key, [data], mac)).to.equal(true);
      } else {
        expect(mac.toString('hex'), c.name).to.equal(c.macHex);
        expect(hkdf.hmacVerify(SHA384, key, [data], hex(c.macHex)), c.name).to.equal(true);
      }
      // Split into parts, including empty ones: the same MAC.
      const split = [data.subarray(0, 3), new Uint8Array(0), data.subarray(3)];
      expect(hkdf.hmac(SHA384, key, split).equals(mac)).to.equal(true);
    }
  });

  it('hmacVerify: any changed bit, a wrong length or another key is false', () => {
    const key = secret(randomBytes(48));
    const data = [Buffer.from('transcript hash')];
    const tag = hkdf.hmac(SHA384, key, data);
    for (let i = 0; i < tag.length * 8; i += 13) {
      const t = Buffer.from(tag);
      t[i >> 3]! ^= 1 << (i & 7);
      expect(hkdf.hmacVerify(SHA384, key, data, t)).to.equal(false);
    }
    expect(hkdf.hmacVerify(SHA384, key, data, tag.subarray(0, 47))).to.equal(false);
    expect(hkdf.hmacVerify(SHA384, key, data, Buffer.concat([tag, Buffer.alloc(1)]))).to.equal(false);
    expect(hkdf.hmacVerify(SHA384, key, data, Buffer.alloc(0))).to.equal(false);
    expect(hkdf.hmacVerify(SHA384, secret(randomBytes(48)), data, tag)).to.equal(false);
    expect(hkdf.hmacVerify(SHA256, key, data, tag)).to.equal(false);
  });

  it('HMAC-SHA-256 agrees with node:crypto; an HKDF output works as an HMAC key (Finished)', () => {
    const key = randomBytes(32);
    expect(hkdf.hmac(SHA256, secret(key), [Buffer.from('abc')]).toString('hex')).to.equal(createHmac('sha256', key).update('abc').digest('hex'));
    const finishedKey = hkdf.expand(SHA384, hkdf.extract(SHA384, null, [randomBytes(48)]), Buffer.from('finished'), 48);
    const th = crypto.sha384(Buffer.from('handshake messages'));
    const verifyData = hkdf.hmac(SHA384, finishedKey, [th]);
    expect(verifyData.toString('hex')).to.equal(createHmac('sha384', testing.exportSecret(finishedKey)).update(th).digest('hex'));
    expect(hkdf.hmacVerify(SHA384, finishedKey, [th], verifyData)).to.equal(true);
  });

  it('HMAC refuses bad arguments and destroyed keys', () => {
    const key = secret(randomBytes(48));
    for (const k of [Buffer.alloc(48), null, {}]) {
      expectCode(() => hkdf.hmac(SHA384, k as never, []), INVALID);
      expectCode(() => native.hmac(SHA384, k as never, []), INVALID);
      expectCode(() => native.hmacVerify(SHA384, k as never, [], Buffer.alloc(48)), INVALID);
    }
    // Inputs are public: a Secret part is refused, by the wrapper and by native code.
    for (const parts of [Buffer.alloc(1), [key], ['x'], [new Uint16Array(1)], null]) {
      expectCode(() => hkdf.hmac(SHA384, key, parts as never), INVALID);
      expectCode(() => native.hmac(SHA384, key, parts as never), INVALID);
      expectCode(() => native.hmacVerify(SHA384, key, parts as never, Buffer.alloc(48)), INVALID);
    }
    for (const expected of [null, 'tag', [1, 2]]) {
      expectCode(() => hkdf.hmacVerify(SHA384, key, [], expected as never), INVALID);
      expectCode(() => native.hmacVerify(SHA384, key, [], expected as never), INVALID);
    }
    const dead = secret(randomBytes(48));
    dead.destroy();
    expectCode(() => hkdf.hmac(SHA384, dead, [Buffer.from('x')]), DESTROYED);
    expectCode(() => hkdf.hmacVerify(SHA384, dead, [Buffer.from('x')], Buffer.alloc(48)), DESTROYED);
  });

  it('SHA-384: FIPS 180-4 examples ("abc", the 896-bit message) and the empty message', () => {
    expect(SHA384_KAT.cases).to.have.length(3);
    for (const c of SHA384_KAT.cases) {
      const msg = hex(c.msgHex);
      expect(crypto.sha384(msg).toString('hex'), c.name).to.equal(c.mdHex);
      expect(crypto.sha384([msg.subarray(0, 1), msg.subarray(1)]).toString('hex'), c.name).to.equal(c.mdHex);
      expect(native.sha384([]).length).to.equal(48);
    }
    expect(crypto.sha384([]).toString('hex')).to.equal(SHA384_KAT.cases[1].mdHex);
  });

  it('SHA-384 takes public bytes only', () => {
    const s = secret(Buffer.from('abc'));
    expectCode(() => crypto.sha384([s] as never), INVALID);
    expectCode(() => native.sha384([s] as never), INVALID);
    expectCode(() => native.sha384('abc' as never), INVALID);
    expectCode(() => crypto.sha384('abc' as never), INVALID);
  });
});

describe('re-entrancy: HKDF, HMAC and SHA-384 parts arrays (array reads run JS)', () => {
  it('a getter that detaches the salt or an earlier IKM part: typed error, never freed bytes', () => {
    const salt = own(Buffer.alloc(1 << 20, 0x5a));
    expectCode(() => native.hkdfExtract(SHA384, salt, withGetter([own('a'), own('b')], 1, () => detach(salt.buffer))), INVALID);
    const first = own(Buffer.alloc(40 << 20, 0x41));
    expectCode(() => native.hkdfExtract(SHA384, null, withGetter([first, own('b')], 1, () => detach(first.buffer))), INVALID);
  });

  it('a getter that destroys the salt or an earlier IKM Secret: ERR_QT_HANDLE_DESTROYED', () => {
    const salt = secret(Buffer.alloc(48, 1));
    expectCode(() => native.hkdfExtract(SHA384, salt, withGetter([own('a'), own('b')], 1, () => salt.destroy())), DESTROYED);
    const part = secret(Buffer.alloc(32, 2));
    expectCode(() => native.hkdfExtract(SHA384, null, withGetter<Uint8Array | Secret>([part, own('b')], 1, () => part.destroy())), DESTROYED);
  });

  it('a getter that destroys the HMAC key or detaches an earlier part or the expected tag: typed errors', () => {
    const key = secret(Buffer.alloc(48, 3));
    expectCode(() => native.hmac(SHA384, key, withGetter([own('a'), own('b')], 1, () => key.destroy())), DESTROYED);
    const key2 = secret(Buffer.alloc(48, 3));
    expectCode(() => native.hmacVerify(SHA384, key2, withGetter([own('a'), own('b')], 1, () => key2.destroy()), Buffer.alloc(48)), DESTROYED);
    const first = own(Buffer.alloc(40 << 20, 0x42));
    expectCode(() => native.hmac(SHA384, secret(Buffer.alloc(48)), withGetter([first, own('b')], 1, () => detach(first.buffer))), INVALID);
    const expected = own(Buffer.alloc(48));
    expectCode(
      () => native.hmacVerify(SHA384, secret(Buffer.alloc(48)), withGetter([own('a'), own('b')], 1, () => detach(expected.buffer)), expected),
      INVALID,
    );
    const part = own(Buffer.alloc(40 << 20, 0x43));
    expectCode(() => native.sha384(withGetter([part, own('b')], 1, () => detach(part.buffer))), INVALID);
  });

  it('a getter that throws: its own exception comes through; a Proxy is not an array', () => {
    const boom = new Error('boom');
    const throwing = () => withGetter([own('a'), own('b')], 1, () => { throw boom; });
    expect(() => native.hkdfExtract(SHA384, null, throwing())).to.throw().that.equals(boom);
    expect(() => native.hmac(SHA384, secret(Buffer.alloc(48)), throwing())).to.throw().that.equals(boom);
    expect(() => native.sha384(throwing())).to.throw().that.equals(boom);
    let fired = 0;
    const proxy = new Proxy([own('a')], { get: (t, k, r) => (fired++, Reflect.get(t, k, r)) });
    expectCode(() => native.hkdfExtract(SHA384, null, proxy), INVALID);
    expectCode(() => native.hmac(SHA384, secret(Buffer.alloc(48)), proxy), INVALID);
    expect(fired).to.equal(0);
  });

  it('a getter that grows the IKM array: the length is read once', () => {
    const parts: Uint8Array[] = withGetter([own('a'), own('b')], 1, () => parts.push(own('grown')));
    const ref = hkdf.extract(SHA384, null, [Buffer.from('ab')]);
    expect(bytesOf(native.hkdfExtract(SHA384, null, parts))).to.equal(bytesOf(ref));
  });

  it('zero-length views in every shape as salt, IKM, info and parts: treated as empty; detached ones refused', () => {
    const empties: Uint8Array[] = [new Uint8Array(0), Buffer.alloc(0), new Uint8Array(new ArrayBuffer(0)), own(Buffer.alloc(8)).subarray(8),
      new Uint8Array(new SharedArrayBuffer(0))];
    const ikm = randomBytes(48);
    const ref = bytesOf(hkdf.extract(SHA384, null, [ikm]));
    const prk = hkdf.extract(SHA384, null, [ikm]);
    const okmRef = bytesOf(hkdf.expand(SHA384, prk, Buffer.alloc(0), 48));
    const key = secret(Buffer.alloc(48, 9));
    const macRef = hkdf.hmac(SHA384, key, [Buffer.from('m')]);
    for (const e of empties) {
      expect(bytesOf(native.hkdfExtract(SHA384, e, [e, ikm, e]))).to.equal(ref);
      expect(bytesOf(native.hkdfExpand(SHA384, prk, e, 48))).to.equal(okmRef);
      expect(native.hmac(SHA384, key, [e, Buffer.from('m'), e]).equals(macRef)).to.equal(true);
      expect(native.hmacVerify(SHA384, key, [e, Buffer.from('m')], e)).to.equal(false);
      expect(native.sha384([e]).toString('hex')).to.equal(SHA384_KAT.cases[1].mdHex);
    }
    const detached = own(Buffer.alloc(16, 1));
    detach(detached.buffer);
    expectCode(() => native.hkdfExtract(SHA384, detached, [ikm]), INVALID);
    expectCode(() => native.hkdfExtract(SHA384, null, [ikm, detached]), INVALID);
    expectCode(() => native.hkdfExpand(SHA384, prk, detached, 48), INVALID);
    expectCode(() => native.hmac(SHA384, key, [detached]), INVALID);
    expectCode(() => native.sha384([detached]), INVALID);
  });

  it('SharedArrayBuffer-backed salt, IKM, info and parts: the same result as a copy', () => {
    const shared = (b: Uint8Array): Uint8Array => {
      const v = new Uint8Array(new SharedArrayBuffer(b.length));
      v.set(b);
      return v;
    };
    const [salt, ikm, info] = [randomBytes(48), randomBytes(48), randomBytes(20)];
    const prk = native.hkdfExtract(SHA384, shared(salt), [shared(ikm)]);
    expect(bytesOf(prk)).to.equal(bytesOf(hkdf.extract(SHA384, salt, [ikm])));
    expect(bytesOf(native.hkdfExpand(SHA384, prk, shared(info), 64))).to.equal(nodeHkdf('sha384', ikm, salt, info, 64));
    expect(native.sha384([shared(Buffer.from('abc'))]).toString('hex')).to.equal(SHA384_KAT.cases[0].mdHex);
  });
});

const root = fileURLToPath(new URL('../..', import.meta.url));

describe('HKDF, HMAC and SHA-384 in FIPS mode', function () {
  this.timeout(120_000);
  let configDir: string | undefined;
  let env: NodeJS.ProcessEnv;

  before(function () {
    // As test/fips/fips.test.ts: FIPS mode needs the FIPS module beside the addon (the build
    // script puts it there) and a configuration generated on this machine by fips/install.sh.
    if (!existsSync(join(dirname(addonPath), 'ossl-modules', 'fips.so'))) {
      this.test!.parent!.title += ' (skipped: no ossl-modules/fips.so beside the addon; build with scripts/build-native.cjs)';
      this.skip();
    }
    configDir = mkdtempSync(join(tmpdir(), 'qt-hkdf-fips-'));
    execFileSync('bash', [join(root, 'fips/install.sh'), dirname(addonPath)], { env: { ...process.env, QUANTUM_TUNNEL_FIPS_DIR: configDir }, stdio: 'pipe' });
    env = { QUANTUM_TUNNEL_FIPS_DIR: configDir, QUANTUM_TUNNEL_FIPS: '' };
  });
  after(() => configDir && rmSync(configDir, { recursive: true, force: true }));

  it('the FIPS provider computes the RFC 5869, Wycheproof, RFC 4231 and FIPS 180-4 answers', () => {
    const w = WYCHEPROOF.tests.find((t: { tcId: number }) => t.tcId === 70);
    const h = RFC4231.cases[0];
    const r = runChild(`
      const testing = await import(${JSON.stringify(new URL('../../lib/testing.ts', import.meta.url).href)});
      const s = qt.fips.enable();
      const { hkdf, sha384 } = qt.crypto;
      const hexOf = (x) => testing.exportSecret(x).toString('hex');
      const c = ${JSON.stringify(RFC5869.cases[0])};
      const prk = hkdf.extract(hkdf.HkdfDigest.SHA256, Buffer.from(c.saltHex, 'hex'), [Buffer.from(c.ikmHex, 'hex')]);
      const okm = hkdf.expand(hkdf.HkdfDigest.SHA256, prk, Buffer.from(c.infoHex, 'hex'), c.length);
      const w = ${JSON.stringify(w)};
      const wprk = hkdf.extract(hkdf.HkdfDigest.SHA384, Buffer.from(w.salt, 'hex'), [Buffer.from(w.ikm, 'hex')]);
      const wokm = hkdf.expand(hkdf.HkdfDigest.SHA384, wprk, Buffer.from(w.info, 'hex'), w.size);
      const h = ${JSON.stringify(h)};
      const mac = hkdf.hmac(hkdf.HkdfDigest.SHA384, testing.secretFromBytes(Buffer.from(h.keyHex, 'hex')), [Buffer.from(h.dataHex, 'hex')]);
      return { mode: s.mode, provider: qt.crypto.info().providers[0].name, prk: hexOf(prk), okm: hexOf(okm), wokm: hexOf(wokm),
               mac: mac.toString('hex'), abc: sha384(Buffer.from('abc')).toString('hex') };`, env);
    expect(r.json?.ok, r.stdout + r.stderr).to.equal(true);
    expect(r.json.value).to.deep.equal({
      mode: 'fips',
      provider: 'OpenSSL FIPS Provider',
      prk: RFC5869.cases[0].prkHex,
      okm: RFC5869.cases[0].okmHex,
      wokm: w.okm,
      mac: h.macHex,
      abc: SHA384_KAT.cases[0].mdHex,
    });
  });

  it('in the error state every HKDF/HMAC/SHA-384 entry point refuses', () => {
    const r = runChild(`
      const { native } = await import(${JSON.stringify(new URL('../../lib/native.ts', import.meta.url).href)});
      qt.fips.enable();
      const { hkdf } = qt.crypto;
      const prk = hkdf.extract(hkdf.HkdfDigest.SHA384, null, [Buffer.alloc(48, 1)]);
      const running = new qt.crypto.Sha384Hash();
      native.fipsEnterErrorState('test');
      const out = [];
      for (const op of [() => hkdf.extract(hkdf.HkdfDigest.SHA384, null, [Buffer.alloc(48)]), () => hkdf.expand(hkdf.HkdfDigest.SHA384, prk, Buffer.alloc(0), 48),
                        () => hkdf.hmac(hkdf.HkdfDigest.SHA384, prk, []), () => hkdf.hmacVerify(hkdf.HkdfDigest.SHA384, prk, [], Buffer.alloc(48)), () => qt.crypto.sha384(Buffer.alloc(1)),
                        () => hkdf.hkdf(hkdf.HkdfDigest.SHA384, null, [Buffer.alloc(48)], Buffer.alloc(0), 48), () => hkdf.extractWithDerivedSalt(hkdf.HkdfDigest.SHA384, prk, Buffer.alloc(1), []),
                        () => hkdf.expandSecrets(hkdf.HkdfDigest.SHA384, prk, [Buffer.alloc(1)], [48]), () => hkdf.expandRecordAead(hkdf.HkdfDigest.SHA384, prk, 1, Buffer.alloc(1), Buffer.alloc(1)),
                        () => hkdf.hmac(hkdf.HkdfDigest.SHA384, prk, [], Buffer.alloc(1)), () => running.update(Buffer.alloc(1)), () => running.digest(), () => new qt.crypto.Sha384Hash()]) {
        try { op(); out.push('ran'); } catch (e) { out.push(e.code); }
      }
      return out;`, env);
    expect(r.json?.ok, r.stdout + r.stderr).to.equal(true);
    expect(r.json.value).to.deep.equal(Array(13).fill('ERR_QT_FIPS_SELFTEST_FAILED'));
  });
});
