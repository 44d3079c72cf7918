/**
 * Writes the seed corpora of fuzz/targets.ts from real traffic: each handshake mode's bytes as a
 * server and as a client read them (recorded by a TCP relay between a real dial() and listen()),
 * every message they carry, and identity files and certificates.
 *
 *   QUANTUM_TUNNEL_TESTING=1 node --import tsx fuzz/seeds.ts
 *
 * Run it again after a wire change; the corpora are committed (fuzz/corpus/<target>/).
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crypto, dial, IdentityKey, listen, type DialOptions, type ListenOptions } from '../lib/index.js';
import { FrameReader } from '../lib/protocol/frame.js';
import { encodeIdentityKeyFile } from '../lib/identity/keyFile.js';
import { TicketIssuer, ClientTicketStore } from '../lib/protocol/v2/tickets.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), 'corpus');

function seed(target: string, bytes: Buffer): void {
  const dir = join(ROOT, target);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, createHash('sha256').update(bytes).digest('hex').slice(0, 16)), bytes);
}

/** One tunnel through a recording relay: the bytes each way, and a short exchange of data. */
async function record(listenOptions: ListenOptions, dialOptions: DialOptions): Promise<{ toServer: Buffer; toClient: Buffer }> {
  const l = listen({ host: '127.0.0.1', port: 0, ...listenOptions });
  l.on('tunnel', (t) => t.pipe(t));
  l.on('error', () => undefined);
  await l.ready;
  const toServer: Buffer[] = [];
  const toClient: Buffer[] = [];
  const relay = createServer((inbound) => {
    const outbound = connect({ host: '127.0.0.1', port: l.address().port });
    inbound.on('data', (d) => (toServer.push(d), outbound.write(d)));
    outbound.on('data', (d) => (toClient.push(d), inbound.write(d)));
    inbound.on('end', () => outbound.end());
    outbound.on('end', () => inbound.end());
    for (const s of [inbound, outbound]) s.on('error', () => undefined);
  });
  relay.listen(0, '127.0.0.1');
  await once(relay, 'listening');
  const t = await dial({ host: '127.0.0.1', port: (relay.address() as AddressInfo).port }, dialOptions);
  t.write('a short exchange of data');
  await once(t, 'data');
  await t.close();
  await l.close({ tunnels: true });
  relay.close();
  return { toServer: Buffer.concat(toServer), toClient: Buffer.concat(toClient) };
}

/** The payloads of a byte stream's frames (handshake records end the walk). */
function payloads(stream: Buffer): Buffer[] {
  const reader = new FrameReader();
  reader.push(stream);
  const out: Buffer[] = [];
  for (let f = reader.nextFrame(); f !== null && out.length < 4; f = reader.nextFrame()) out.push(f.payload);
  return out;
}

const serverKey = IdentityKey.generate();
const clientKey = IdentityKey.generate();
const psk = { identity: 'fuzz', secret: crypto.randomSecret(32) };
const issuer = new TicketIssuer({ serverIdentity: Buffer.from('fuzz') });
const store = new ClientTicketStore();
// [responder config index of fuzz/targets.ts, listen options, dial options]
const modes: Array<[number, ListenOptions, DialOptions]> = [
  [0, { tickets: issuer }, { ticketStore: store }],
  [0, { tickets: issuer }, { ticketStore: store }], // resumes with the ticket of the one before
  [1, { psk }, { psk }],
  [2, { identity: serverKey, authorizedPeers: [clientKey.publicKey] }, { server: { publicKey: serverKey.publicKey }, identity: clientKey }],
  [3, { groups: ['x25519-mlkem768', 'p384-mlkem1024'] }, { groups: ['p384-mlkem1024'] }],
  [0, { legacyV1: true }, { legacyV1: true }],
];
for (const [config, lo, dopt] of modes) {
  const { toServer, toClient } = await record(lo, dopt);
  seed('responder', Buffer.concat([Buffer.from([config]), toServer]));
  seed('initiator', Buffer.concat([Buffer.from([dopt.legacyV1 ? 1 : 0]), toClient]));
  seed('frames', Buffer.concat([Buffer.from([0x00 | 6]), toServer]));
  seed('frames', Buffer.concat([Buffer.from([0x80 | 3]), toClient]));
  // messages: the decoder index of fuzz/targets.ts `messages` for each hello.
  const [clientHello] = payloads(toServer);
  const [serverHello] = payloads(toClient);
  if (clientHello) seed('messages', Buffer.concat([Buffer.from([dopt.legacyV1 ? 0 : 5]), clientHello]));
  if (serverHello) seed('messages', Buffer.concat([Buffer.from([dopt.legacyV1 ? 1 : 6]), serverHello]));
}
issuer.destroy();
store.destroy();

const line = Buffer.from(serverKey.publicKey.toString());
seed('identities', Buffer.concat([Buffer.from([0]), line]));
seed('identities', Buffer.concat([Buffer.from([1]), encodeIdentityKeyFile(clientKey, { comment: 'fuzz' })]));
seed('identities', Buffer.concat([Buffer.from([2]), encodeIdentityKeyFile(clientKey, { passphrase: Buffer.from('fuzz') })]));
const pki = join(dirname(fileURLToPath(import.meta.url)), '..', 'test', 'fixtures', 'pki');
seed('identities', Buffer.concat([Buffer.from([3]), readFileSync(join(pki, 'cli-leaf.pem'))]));
seed('identities', Buffer.concat([Buffer.from([3]), readFileSync(join(pki, 'cli-ca.pem'))]));
serverKey.destroy();
clientKey.destroy();

// Configuration files: the deployment examples (YAML), a TOML file with every kind of value, and
// YAML anchors and aliases with a service named like a prototype property.
const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
for (const f of ['deploy/systemd/config.yaml', 'deploy/docker/config/server.yaml', 'deploy/docker/config/client.yaml']) {
  seed('config', Buffer.concat([Buffer.from([0]), readFileSync(join(repo, f))]));
}
seed('config', Buffer.concat([Buffer.from([1]), Buffer.from([
  'log-level = "info"', 'obs-addr = "127.0.0.1:9090"', '[defaults]', 'drain-timeout = "30s"', 'max-conns-per-ip = 10',
  '[services.postgres]', 'role = "server"', 'listen = "0.0.0.0:8443"', 'to = "127.0.0.1:5432"', 'identity = "/etc/quantum-tunnel/server.key"', 'authorized-peers = "/etc/quantum-tunnel/authorized_peers"',
  '[services.pg-client]', 'role = "client"', 'listen = "127.0.0.1:15432"', 'connect = "db.example.net:8443"', 'psk-file = "/etc/quantum-tunnel/psk"', '',
].join('\n'))]));
seed('config', Buffer.concat([Buffer.from([0]), Buffer.from('services:\n  a: &x {role: echo, listen: "127.0.0.1:0", no-auth: true}\n  b: *x\n  constructor: {role: echo}\n')]));
console.log('seeds written under', ROOT);
