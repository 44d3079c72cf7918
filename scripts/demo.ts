/**
 * `npm run demo`: what the crypto core does, end to end, on defaults. Two parties agree on a key
 * with CH-KEM (X25519 + ML-KEM-1024 over the addon's own OpenSSL 3.5), derive traffic keys with
 * the protocol's key schedule, and exchange sealed messages; then the same with a tampered byte.
 * (The tunnel and the quantum-vpn CLI build on exactly these pieces.)
 */
import { crypto } from '../lib/index.js';
import { deriveTrafficKeys } from '../lib/protocol/keySchedule.js';

const info = crypto.info();
console.log(`quantum-tunnel crypto core: ${info.openssl} (${info.mode} mode; Node ${process.version} bundles OpenSSL ${process.versions.openssl})`);

const t0 = process.hrtime.bigint();
const client = await crypto.chkem.generateKeyPairAsync();
console.log(`client: CH-KEM public key, ${client.publicKey.length} bytes (X25519 32 + ML-KEM-1024 ${client.publicKey.length - 32})`);
const { ciphertext, sharedSecret: serverMaster } = await crypto.chkem.encapsulateAsync(client.publicKey);
console.log(`server: encapsulated to it, ciphertext ${ciphertext.length} bytes`);
const clientMaster = await crypto.chkem.decapsulateAsync(client, ciphertext);
const ms = Number(process.hrtime.bigint() - t0) / 1e6;
console.log(`both:   same 32-byte master secret: ${crypto.timingSafeEqual(clientMaster, serverMaster)} (${ms.toFixed(2)} ms; the secret itself never left native memory)`);

const clientKeys = deriveTrafficKeys(clientMaster);
const serverKeys = deriveTrafficKeys(serverMaster);
const clientSend = crypto.createAead(crypto.AeadSuite.AES_256_GCM, clientKeys.initiatorToResponder);
const serverRecv = crypto.createAead(crypto.AeadSuite.AES_256_GCM, serverKeys.initiatorToResponder);

const nonce = Buffer.alloc(12);
const aad = Buffer.from('seq 0');
const message = Buffer.from('hello from a post-quantum handshake');
const sealed = crypto.seal(clientSend, nonce, aad, message);
console.log(`client: sealed ${message.length} bytes -> ${sealed.length} bytes (AES-256-GCM)`);
console.log(`server: opened: "${crypto.open(serverRecv, nonce, aad, sealed).toString()}"`);

sealed[3]! ^= 0x01;
try {
  crypto.open(serverRecv, nonce, aad, sealed);
  console.log('server: tampered record accepted (this must not happen)');
  process.exitCode = 1;
} catch (err) {
  console.log(`server: tampered record refused: ${(err as { code: string }).code}`);
}

for (const h of [client, clientMaster, serverMaster, clientKeys.initiatorToResponder, clientKeys.responderToInitiator,
  serverKeys.initiatorToResponder, serverKeys.responderToInitiator, clientSend, serverRecv]) h.destroy();
console.log('all keys destroyed (cleansed in native memory)');
