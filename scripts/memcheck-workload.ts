/**
 * A workload for scripts/memcheck.sh: every native entry point, valid and invalid, with handles
 * destroyed and handles left to the finalizer, so valgrind can see leaks and bad accesses.
 */
import { crypto } from '../lib/index.js';
import * as hybrid from '../lib/crypto/hybrid.js';

const rounds = Number(process.argv[2] ?? 5);
for (let i = 0; i < rounds; i++) {
  const kp = crypto.chkem.generateKeyPair();
  const enc = crypto.chkem.encapsulate(kp.publicKey);
  const k = crypto.chkem.decapsulate(kp, enc.ciphertext);
  const aead = crypto.createAead(crypto.AeadSuite.AES_256_GCM, k);
  const sealed = crypto.seal(aead, Buffer.alloc(12), Buffer.from('ad'), Buffer.alloc(100, i));
  crypto.open(aead, Buffer.alloc(12), Buffer.from('ad'), sealed);
  sealed[0]! ^= 1;
  try { crypto.open(aead, Buffer.alloc(12), Buffer.from('ad'), sealed); } catch { /* expected */ }
  const table = Uint32Array.from([0, 64, 0, 80, 92, 8, 64, 64, 100, 180, 192, 8]);
  const dst = Buffer.alloc(256);
  aead.sealBatch(Buffer.alloc(128, 7), dst, table, 2);
  try { aead.sealBatch(Buffer.alloc(8), dst, table, 2); } catch { /* expected: out of bounds */ }
  const rec = crypto.createRecordAead(crypto.AeadSuite.AES_256_GCM, k, crypto.randomSecret(12));
  const record = crypto.sealRecord(rec, i, Buffer.from('hd'), Buffer.alloc(50, i));
  crypto.openRecord(rec, i, Buffer.from('hd'), record);
  try { crypto.openRecord(rec, i + 1, Buffer.from('hd'), record); } catch { /* expected: wrong seq */ }
  rec.sealRecordBatch(Buffer.alloc(128, 7), dst, Uint32Array.from([0, 64, 8, 0, 8, 64, 64, 96, 88, 8]), 2, i);
  try { (rec as unknown as crypto.AeadContext).seal(dst, 0, Buffer.alloc(12), Buffer.alloc(0), Buffer.alloc(1)); } catch { /* expected: a record context */ }
  // A record spanning reads, opened part by part; then a forged one (every part wiped).
  const spanning = crypto.sealRecord(rec, i + 7, Buffer.from('hd'), Buffer.alloc(300, i));
  rec.openRecordParts([spanning.subarray(0, 100), spanning.subarray(100, 310), spanning.subarray(310)], i + 7, Buffer.from('hd'));
  spanning[5]! ^= 1;
  try { rec.openRecordParts([spanning.subarray(0, 200), spanning.subarray(200)], i + 7, Buffer.from('hd')); } catch { /* expected: forged */ }
  try { rec.openRecordParts(new Array(17).fill(spanning), i, Buffer.from('hd')); } catch { /* expected: too many parts */ }
  // v2's one-call key exchange: the client's share, the server's step, the client's step, and a bad share.
  const keys = hybrid.hybridClientShare(0x0101);
  const server = hybrid.hybridEncapsulate(0x0101, 0x0200, keys.share, Buffer.from('qtun v2 hybrid'));
  hybrid.hybridDecapsulate(0x0101, 0x0200, keys, server.share, Buffer.from('qtun v2 hybrid')).destroy();
  try { hybrid.hybridDecapsulate(0x0101, 0x0200, keys, Buffer.alloc(server.share.length), Buffer.from('x')); } catch { /* expected: low order */ }
  if (i % 2 === 0) { keys.classical.destroy(); keys.mlkem.destroy(); server.secret.destroy(); }
  if (i % 2 === 0) rec.destroy();
  crypto.deriveSecrets('label', k, [32, 32]).forEach((s) => s.destroy());
  crypto.deriveKeyMultiple('label', [k, Buffer.alloc(5)], 64);
  crypto.transcriptHash([Buffer.alloc(3), Buffer.alloc(4)]);
  crypto.shake256(Buffer.alloc(1000), 1000);
  try { crypto.chkem.encapsulate(Buffer.alloc(1600)); } catch { /* expected: low-order / bad key */ }
  try { crypto.mlkem1024.decapsulate(kp.mlkemPrivateKey, Buffer.alloc(10)); } catch { /* expected */ }
  const cc = crypto.createAead(crypto.AeadSuite.CHACHA20_POLY1305, crypto.randomSecret(32));
  crypto.seal(cc, Buffer.alloc(12), Buffer.alloc(0), Buffer.alloc(10));
  if (i % 2 === 0) {
    // Destroy explicitly half the time; leave the rest to finalizers.
    kp.destroy(); k.destroy(); enc.sharedSecret.destroy(); aead.destroy(); cc.destroy();
  }
  crypto.randomBytes(64);
}
await Promise.all([crypto.mlkem768.generateKeyPairAsync(), crypto.chkem.generateKeyPairAsync()]);
{
  const keys = await hybrid.hybridClientShareAsync(0x0103);
  const server = await hybrid.hybridEncapsulateAsync(0x0103, 0x0200, keys.share, Buffer.from('qtun v2 hybrid'));
  const pending = hybrid.hybridDecapsulateAsync(0x0103, 0x0200, keys, server.share, Buffer.from('qtun v2 hybrid'));
  keys.classical.destroy(); // the job holds its own references
  (await pending).destroy();
  await hybrid.hybridEncapsulateAsync(0x0103, 0x0200, Buffer.alloc(keys.share.length, 0xff), Buffer.from('x')).catch(() => undefined);
}
const gc = (globalThis as { gc?: () => void }).gc;
gc?.();
console.log('workload done');
