/**
 * The annotated examples printed by `quantum-vpn example`. Each is a complete ES module against
 * the package's public API; test/cli/example.test.ts runs every one of them (with the import
 * pointed at this checkout) and checks its output, so they cannot drift from the API.
 */

export interface Example {
  name: string;
  title: string;
  /** Lines the example prints that the tests look for. */
  expect: string[];
  code: string;
}

const basic = `// Echo server and client: listen(), dial() and the message API.
import { dial, listen, type Tunnel } from 'quantum-tunnel';

// Server. listen() returns at once; await \`ready\` to know the port is bound. Every accepted
// connection runs its own hybrid post-quantum handshake (X25519 + ML-KEM-1024) with a deadline,
// and each established session arrives as a Tunnel.
const listener = listen({ host: '127.0.0.1', port: 0 }); // port 0: any free port
await listener.ready;

listener.on('tunnel', async (tunnel: Tunnel) => {
  tunnel.on('error', () => {}); // a Tunnel is a stream: always handle 'error'
  // messages() keeps record boundaries: one send() by the peer is one message here.
  for await (const message of tunnel.messages()) {
    await tunnel.send(Buffer.concat([Buffer.from('Echo: '), message]));
  }
  tunnel.end(); // the client has finished (close_notify): finish our side too
});

// Client. dial() resolves once the handshake is complete (or rejects with a QuantumTunnelError).
const { port } = listener.address();
const tunnel = await dial(\`127.0.0.1:\${port}\`);
tunnel.on('error', (err) => console.error('tunnel failed:', err.message));
const info = tunnel.info();
console.log(\`connected: \${info.suite}, handshake \${info.handshakeMs.toFixed(1)} ms\`);

const replies = tunnel.messages();
await tunnel.send(Buffer.from('hello, post-quantum world'));
const reply = await replies.next();
console.log(String(reply.value)); // Echo: hello, post-quantum world

await tunnel.close(); // close_notify, then the socket closes
await listener.close({ tunnels: true }); // stop accepting; close every server tunnel gracefully
`;

const streams = `// A Tunnel is a Node Duplex: write(), pipe() and for-await work, with backpressure end to end.
import { createHash, randomBytes } from 'node:crypto';
import { dial, listen, type Tunnel } from 'quantum-tunnel';

const listener = listen({ host: '127.0.0.1', port: 0 });
await listener.ready;
// The server echoes every byte back: pipe() handles backpressure in both directions.
listener.on('tunnel', (tunnel: Tunnel) => {
  tunnel.on('error', () => {});
  tunnel.pipe(tunnel);
});

const tunnel = await dial({ host: '127.0.0.1', port: listener.address().port });
const data = randomBytes(4 * 1024 * 1024);
const sent = createHash('sha256').update(data).digest('hex');

// Stream mode: writes are cut into records of up to 16 KiB; boundaries are not kept.
tunnel.end(data); // write everything, then close_notify
const received = createHash('sha256');
let bytes = 0;
for await (const chunk of tunnel) {
  received.update(chunk as Buffer);
  bytes += (chunk as Buffer).length;
}
console.log(\`echoed \${bytes} bytes, sha256 \${received.digest('hex') === sent ? 'matches' : 'DIFFERS'}\`);

await listener.close({ tunnels: true });
`;

const chkem = `// The crypto core directly: CH-KEM (X25519 + ML-KEM-1024) and AEAD over the addon's OpenSSL 3.5.
import { crypto } from 'quantum-tunnel';

console.log(\`OpenSSL: \${crypto.info().openssl}\`); // the addon's own OpenSSL, not Node's

// Alice makes a key pair. The private halves are native handles: their bytes never reach JS.
const alice = await crypto.chkem.generateKeyPairAsync();
console.log(\`public key: \${alice.publicKey.length} bytes\`); // 32 (X25519) + 1568 (ML-KEM-1024)

// Bob encapsulates to Alice's public key: a ciphertext for her and a shared secret for him.
const { ciphertext, sharedSecret } = await crypto.chkem.encapsulateAsync(alice.publicKey);
// Alice decapsulates and gets the same secret. It stays secure while either half holds.
const aliceSecret = await crypto.chkem.decapsulateAsync(alice, ciphertext);
console.log(\`same secret: \${crypto.timingSafeEqual(aliceSecret, sharedSecret)}\`);

// Derive a key from it (SHAKE-256 with a label) and seal a message with AES-256-GCM.
const [key] = crypto.deriveSecrets('example-app-key', aliceSecret, [32]);
const aead = crypto.createAead(crypto.AeadSuite.AES_256_GCM, key!);
const nonce = crypto.randomBytes(12); // never reuse a nonce with the same key
const sealed = crypto.seal(aead, nonce, Buffer.from('header'), Buffer.from('attack at dawn'));
const opened = crypto.open(aead, nonce, Buffer.from('header'), sealed);
console.log(\`opened: \${opened.toString()}\`);

// Tampering is detected: open() throws ERR_QT_AUTHENTICATION_FAILED.
sealed[0]! ^= 1;
try {
  crypto.open(aead, nonce, Buffer.from('header'), sealed);
} catch (err) {
  console.log(\`tampered: \${(err as { code: string }).code}\`);
}

// Cleanse everything in native memory now (finalizers would do it later otherwise).
for (const handle of [alice, sharedSecret, aliceSecret, key!, aead]) handle.destroy();
`;

const config = `// Options: cipher suites, timeouts, rekeying, observers (hooks) and admission control.
import { crypto, dial, listen, type CipherName, type ConnectionAdmission, type TunnelObserver } from 'quantum-tunnel';

// ChaCha20-Poly1305 where this build and mode have it; FIPS mode (and the FIPS build) offer only
// AES-256-GCM, and naming an unavailable suite is an error.
const chacha = crypto.info().chacha20.available;
const accepted: CipherName[] = chacha ? ['chacha20-poly1305', 'aes-256-gcm'] : ['aes-256-gcm'];
const offered: CipherName[] = chacha ? ['chacha20-poly1305'] : ['aes-256-gcm'];

// An observer sees handshakes, traffic, rekeys and closes (lib/ops builds metrics, logs and
// traces on the same hooks). Every hook is optional; one that throws is ignored.
const events: string[] = [];
const observer: TunnelObserver = {
  onHandshakeStart: (ctx) => {
    events.push(\`\${ctx.role} handshake started\`);
    return { succeeded: (o) => events.push(\`\${ctx.role} handshake done: \${o.suite}\`) };
  },
  onTunnelClose: (info) => events.push(\`closed after \${info.bytesSent} bytes sent\`),
};

// Admission control runs before any cryptography: here, at most 2 connections per address.
const open = new Map<string, number>();
const admission: ConnectionAdmission = {
  admit(peer) {
    const key = peer.address ?? 'unknown';
    const n = open.get(key) ?? 0;
    if (n >= 2) return { ok: false, reason: 'connection' };
    open.set(key, n + 1);
    return { ok: true, release: () => open.set(key, (open.get(key) ?? 1) - 1) };
  },
};

const listener = listen({
  host: '127.0.0.1',
  port: 0,
  ciphers: accepted, // accepted suites (the client's order wins)
  handshakeTimeoutMs: 5_000, // drop silent or slow clients (default 30 s)
  observer,
  admission,
});
await listener.ready;
listener.on('tunnel', (t) => { t.on('error', () => {}); t.pipe(t); });

const tunnel = await dial(\`127.0.0.1:\${listener.address().port}\`, {
  ciphers: offered, // the suites to offer, in order
  connectTimeoutMs: 2_000,
  handshakeTimeoutMs: 5_000,
  autoRekey: true, // rekey on the protocol's byte/record/time limits (the default)
  signal: AbortSignal.timeout(10_000), // abandon the whole attempt after 10 s
  observer,
});
console.log(\`suite: \${tunnel.info().suite}\`); // ChaCha20-Poly1305 (AES-256-GCM in FIPS mode)

await tunnel.rekey(); // a fresh CH-KEM exchange, ratcheted into new keys, on demand
console.log(\`rekeys: \${tunnel.info().rekeys}, ping: \${(await tunnel.ping()).toFixed(2)} ms\`);

await tunnel.close();
await listener.close({ tunnels: true });
console.log(events.join('; '));
`;

const resumption = `// Session resumption (protocol v2): the server sends each new tunnel a ticket in-band, encrypted;
// the client keeps it in a ClientTicketStore and offers it on its next dial to the same address.
// Tickets are single-use and bound to the server that issued them, and a resumed handshake still
// runs a fresh hybrid key exchange. (Legacy v1 has TicketManager, issueTicket() and
// resumptionState() instead.)
import { ClientTicketStore, dial, listen, TicketIssuer, type Tunnel } from 'quantum-tunnel';

// Give the servers of a cluster the same ticket key, server identity and AntiReplayStore to let
// a client resume on any of them (docs/OPERATIONS.md).
const tickets = new TicketIssuer({ serverIdentity: Buffer.from('example-server'), lifetimeSeconds: 3600 });
const listener = listen({ host: '127.0.0.1', port: 0, tickets });
await listener.ready;
listener.on('tunnel', (tunnel: Tunnel) => {
  tunnel.on('error', () => {});
  tunnel.pipe(tunnel);
});

const address = \`127.0.0.1:\${listener.address().port}\`;
const ticketStore = new ClientTicketStore();
const first = await dial(address, { ticketStore });
first.on('error', () => {});
await first.ping(); // the ticket comes right after the handshake, before the pong
await first.close();

const second = await dial(address, { ticketStore });
second.on('error', () => {});
console.log(\`protocol \${second.info().protocol}: first resumed=\${first.info().resumed}, second resumed=\${second.info().resumed}\`);
await second.close();
await listener.close({ tunnels: true });
tickets.destroy();
ticketStore.destroy();
`;

const errors = `// Error handling: every failure is a QuantumTunnelError with a stable code.
import { createServer, type AddressInfo } from 'node:net';
import { dial, ErrorCode, listen, QuantumTunnelError } from 'quantum-tunnel';

async function attempt(what: string, fn: () => Promise<unknown>): Promise<void> {
  try {
    await fn();
    console.log(\`\${what}: ok\`);
  } catch (err) {
    if (err instanceof QuantumTunnelError) console.log(\`\${what}: \${err.code}\`);
    else throw err; // not ours: a bug, let it surface
  }
}

// Nothing listens there: ERR_QT_CONNECTION_FAILED.
const closed = createServer();
await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
const closedPort = (closed.address() as AddressInfo).port;
await new Promise<void>((r) => closed.close(() => r()));
await attempt('closed port', () => dial(\`127.0.0.1:\${closedPort}\`));

// A TCP server that never answers the handshake: ERR_QT_HANDSHAKE_TIMEOUT.
const silent = createServer(() => {});
await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
const silentPort = (silent.address() as AddressInfo).port;
await attempt('silent server', () => dial(\`127.0.0.1:\${silentPort}\`, { handshakeTimeoutMs: 300 }));

// Cancelling through an AbortSignal: ERR_QT_ABORTED.
await attempt('aborted', () => dial(\`127.0.0.1:\${silentPort}\`, { signal: AbortSignal.timeout(100) }));
silent.close();

// Misuse is reported the same way: a message must be 1 to 65,479 bytes.
const listener = listen({ host: '127.0.0.1', port: 0 });
await listener.ready;
listener.on('tunnel', (t) => {
  t.on('error', () => {});
  t.resume(); // read (and drop) what arrives, so the client's close is seen and answered
});
const tunnel = await dial(\`127.0.0.1:\${listener.address().port}\`);
await attempt('oversized message', () => tunnel.send(Buffer.alloc(70_000)));

// A tunnel reports failures as 'error' events (a stream rule); a clean close is 'close' alone.
tunnel.on('error', (err) => console.log(\`tunnel error: \${(err as QuantumTunnelError).code}\`));
tunnel.on('close', () => console.log('tunnel closed'));
await tunnel.close();
await listener.close({ tunnels: true });
console.log(\`codes are constants too: \${ErrorCode.HANDSHAKE_TIMEOUT}\`);
`;

const security = `// Security practices with protocol v2 (docs/PROTOCOL.md and docs/SECURITY.md say why).
import { crypto, dial, listen, type QuantumTunnelError, type Tunnel } from 'quantum-tunnel';

// 1. Know what you run: the addon links its own OpenSSL 3.5; FIPS mode is opt-in
//    (fips.enable() or QUANTUM_TUNNEL_FIPS=1) and then offers AES-256-GCM only.
const info = crypto.info();
console.log(\`crypto: \${info.openssl}, mode \${info.mode}\`);

// 2. Authenticate both ends with a pre-shared key. Without one, a handshake is anonymous: it
//    defeats recording now and decrypting later, not an active man in the middle. importSecret()
//    copies the key into native memory and zero-fills your buffer, so it never lingers in the JS
//    heap. Here the key is random; in real use it is provisioned out of band (for example a file
//    written by \`quantum-vpn psk generate\`, read with fs and handed to importSecret()).
const keyBytes = crypto.randomFill(Buffer.alloc(32));
const psk = { identity: 'app-1', secret: crypto.importSecret(keyBytes) }; // keyBytes is now all zeros
const listener = listen({ host: '127.0.0.1', port: 0, psk, handshakeTimeoutMs: 10_000 });
await listener.ready;
listener.on('tunnel', async (tunnel: Tunnel) => {
  tunnel.on('error', () => {});
  const peer = tunnel.info().peerIdentity;
  console.log(\`server: the client proved the key of \${peer?.type === 'psk' ? peer.identity : 'nobody'}\`);
  // 3. close_notify is an authenticated record in v2, so a clean end cannot be forged; a cut
  //    connection makes messages() reject (ERR_QT_TRUNCATED). Still, make the end of your data
  //    explicit when the sender must know it all arrived: here an END message answered with a receipt.
  let total = 0;
  try {
    for await (const m of tunnel.messages()) {
      if (m.toString() === 'END') await tunnel.send(Buffer.from(\`received \${total} bytes, complete\`));
      else total += m.length;
    }
  } catch (err) {
    console.log(\`the stream was cut (\${(err as QuantumTunnelError).code}): discard it\`);
  }
  tunnel.end(); // the client has closed: finish our side
});
const address = \`127.0.0.1:\${listener.address().port}\`;

// A client with another key under the same identity is refused, on both ends.
const wrong = { identity: 'app-1', secret: crypto.randomSecret(32) };
try {
  await dial(address, { psk: wrong });
} catch (err) {
  console.log(\`wrong key: \${(err as QuantumTunnelError).code}\`); // ERR_QT_PSK_MISMATCH
}
wrong.secret.destroy();

const tunnel = await dial(address, {
  psk,
  ciphers: ['aes-256-gcm'], // pin the suite if policy requires (FIPS: AES-256-GCM)
  handshakeTimeoutMs: 10_000,
});
tunnel.on('error', (err) => console.error('tunnel failed:', err.message));
const i = tunnel.info();
console.log(\`client: protocol \${i.protocol}, \${i.group}, the server proved the key of \${i.peerIdentity?.type === 'psk' ? i.peerIdentity.identity : 'nobody'}\`);
const replies = tunnel.messages();
// 4. Rekeying is automatic (by bytes, records and time); a long-lived tunnel can also rekey on
//    demand, for example after a privilege change, so later keys owe nothing to the earlier ones.
await tunnel.rekey();
await tunnel.send(Buffer.from('payload'));
await tunnel.send(Buffer.from('END'));
console.log(String((await replies.next()).value));

// 5. Close gracefully, and destroy secret handles as soon as they are not needed.
await tunnel.close();
await listener.close({ tunnels: true });
psk.secret.destroy();
console.log('done');
`;

const identities = `// Identities (docs/PROTOCOL.md §13, §14): pinned keys, as WireGuard does it, and certificates.
import { AuthorizedPeers, CertificateIdentity, crypto, dial, IdentityKey, listen, type QuantumTunnelError, type Tunnel } from 'quantum-tunnel';

const echo = (tunnel: Tunnel) => {
  tunnel.on('error', () => {});
  tunnel.pipe(tunnel);
};

// 1. Pinned keys. Each side has an identity key (made in memory here;
//    \`quantum-vpn keygen FILE\` writes one to a 0600 file, which \`forward --identity\` reads).
//    The client pins the server's public key; the server admits the client's key (or fingerprint).
const serverKey = IdentityKey.generate();
const clientKey = IdentityKey.generate();
console.log(\`server key: \${serverKey.fingerprint}\`); // SHA256:..., what people compare
const listener = listen({
  host: '127.0.0.1',
  port: 0,
  identity: serverKey,
  authorizedPeers: new AuthorizedPeers([clientKey.publicKey.toString('laptop')]),
});
await listener.ready;
listener.on('tunnel', (tunnel: Tunnel) => {
  const peer = tunnel.info().peerIdentity;
  console.log(\`server: the client proved \${peer?.type === 'key' ? peer.comment : 'nothing'}\`);
  echo(tunnel);
});
const address = \`127.0.0.1:\${listener.address().port}\`;
const tunnel = await dial(address, { server: { publicKey: serverKey.publicKey }, identity: clientKey });
console.log(\`client: the server proved \${tunnel.info().peerIdentity?.type === 'key' ? 'its pinned key' : 'nothing'}\`);
await tunnel.close();

// A client that pins another key, or one the server does not admit, is refused on both ends.
for (const attempt of [{ server: { publicKey: IdentityKey.generate().publicKey } }, { server: { publicKey: serverKey.publicKey }, identity: IdentityKey.generate() }]) {
  try {
    await dial(address, attempt);
  } catch (err) {
    console.log(\`refused: \${(err as QuantumTunnelError).code}\`); // ERR_QT_SERVER_KEY_MISMATCH, ERR_QT_UNKNOWN_PEER
  }
}
await listener.close({ tunnels: true });

// 2. Certificates: an ML-DSA-87 CA (\`quantum-vpn cert ca\` and \`cert issue\` make the files) and a
//    server certificate for the name clients dial; the client checks chain, validity and name.
const caKey = crypto.mldsa87.generateKeyPair().privateKey;
const ca = crypto.x509.createSelfSignedCa({ privateKey: caKey, subject: { commonName: 'Example CA' }, notAfter: new Date(Date.now() + 86_400_000) });
const leafKey = crypto.mldsa87.generateKeyPair().privateKey;
const leaf = crypto.x509.issueCertificate({
  issuer: ca,
  issuerKey: caKey,
  publicKey: leafKey,
  subject: { commonName: 'db.example.test' },
  ipAddresses: ['127.0.0.1'],
  notAfter: new Date(Date.now() + 86_400_000),
});
const certified = listen({ host: '127.0.0.1', port: 0, identity: new CertificateIdentity([leaf], leafKey) });
await certified.ready;
certified.on('tunnel', echo);
const viaCa = await dial(\`127.0.0.1:\${certified.address().port}\`, { server: { ca: ca.toPem() } }); // name: the host dialled
const who = viaCa.info().peerIdentity;
console.log(\`client: the server proved \${who?.type === 'certificate' ? who.subject : 'nothing'}\`); // CN=db.example.test
await viaCa.close();
await certified.close({ tunnels: true });
for (const k of [serverKey, clientKey]) k.destroy();
caKey.destroy();
console.log('done');
`;

export const EXAMPLES: readonly Example[] = [
  { name: 'basic', title: 'Echo server and client (listen, dial, message API)', expect: ['connected: AES-256-GCM', 'Echo: hello, post-quantum world'], code: basic },
  { name: 'streams', title: 'Tunnels as streams (pipe, backpressure, for-await)', expect: ['echoed 4194304 bytes, sha256 matches'], code: streams },
  { name: 'crypto', title: 'The crypto core: CH-KEM and AEAD directly', expect: ['public key: 1600 bytes', 'same secret: true', 'opened: attack at dawn', 'tampered: ERR_QT_AUTHENTICATION_FAILED'], code: chkem },
  { name: 'config', title: 'Configuration: suites, timeouts, rekey, observers, admission', expect: ['suite: ', 'rekeys: 1', 'client handshake done: '], code: config },
  { name: 'resumption', title: 'Session resumption with tickets (protocol v2)', expect: ['protocol v2: first resumed=false, second resumed=true'], code: resumption },
  { name: 'errors', title: 'Error handling (QuantumTunnelError codes)', expect: ['closed port: ERR_QT_CONNECTION_FAILED', 'silent server: ERR_QT_HANDSHAKE_TIMEOUT', 'aborted: ERR_QT_ABORTED', 'oversized message: ERR_QT_INVALID_ARGUMENT', 'tunnel closed'], code: errors },
  {
    name: 'security',
    title: 'Security practices: PSK authentication (protocol v2)',
    expect: [
      'wrong key: ERR_QT_PSK_MISMATCH',
      'server: the client proved the key of app-1',
      'client: protocol v2, ', // the group is P-384 + ML-KEM-1024 in FIPS mode
      'the server proved the key of app-1',
      'received 7 bytes, complete',
      'done',
    ],
    code: security,
  },
  {
    name: 'identities',
    title: 'Identities: pinned keys and ML-DSA-87 certificates (protocol v2)',
    expect: [
      'server: the client proved laptop',
      'client: the server proved its pinned key',
      'refused: ERR_QT_SERVER_KEY_MISMATCH',
      'refused: ERR_QT_UNKNOWN_PEER',
      'client: the server proved CN=db.example.test',
      'done',
    ],
    code: identities,
  },
];
