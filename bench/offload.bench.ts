/**
 * The crossover behind `offloadCrypto: 'auto'` (lib/tunnel/handshakeLoad.ts AUTO_OFFLOAD_FROM):
 * handshakes/s (v2, dial + handshake + close, both ends in this process) with the key-exchange
 * steps inline (`false`) and on the threadpool (`true`), at several numbers of clients at once.
 * Modes alternate within each round; each figure is the median of the rounds. A measurement, not
 * a test.
 *
 *   npm run bench -- --only offload [--rounds N] [--handshakes N] [--json FILE]
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { dial, listen, type Listener } from '../lib/index.js';
import { AUTO_OFFLOAD_FROM } from '../lib/tunnel/handshakeLoad.js';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    handshakes: { type: 'string', default: '400' },
    json: { type: 'string' },
    quick: { type: 'boolean', default: false },
  },
});
const ROUNDS = args.quick ? 2 : Number(args.rounds);
const HANDSHAKES = args.quick ? 100 : Number(args.handshakes);
const CONCURRENCY = [1, 2, 4, 8, 16, 64];
const MODES = [false, true] as const;

async function rate(listener: Listener, offload: boolean, clients: number): Promise<number> {
  const port = listener.address()!.port;
  const one = async () => {
    const t = await dial({ host: '127.0.0.1', port }, { offloadCrypto: offload });
    await t.close();
  };
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: clients }, async () => {
    while (next++ < HANDSHAKES) await one();
  }));
  return (HANDSHAKES / (performance.now() - t0)) * 1000;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const listeners = new Map<boolean, Listener>();
for (const offload of MODES) {
  const l = listen({ host: '127.0.0.1', port: 0, offloadCrypto: offload });
  l.on('tunnel', (t) => t.on('error', () => {}));
  await l.ready;
  listeners.set(offload, l);
  await rate(l, offload, 4); // warm up
}

const samples = new Map<string, number[]>();
for (let round = 0; round < ROUNDS; round++) {
  for (const clients of CONCURRENCY) {
    const order = round % 2 === 0 ? MODES : [...MODES].reverse();
    for (const offload of order) {
      const key = `${clients}/${offload}`;
      samples.set(key, [...(samples.get(key) ?? []), await rate(listeners.get(offload)!, offload, clients)]);
    }
  }
}

const rows = CONCURRENCY.map((clients) => {
  const inline = median(samples.get(`${clients}/false`)!);
  const offloaded = median(samples.get(`${clients}/true`)!);
  return { clients, inline: Math.round(inline), offloaded: Math.round(offloaded), ratio: Number((offloaded / inline).toFixed(2)) };
});
console.log('| clients at once | inline hs/s | threadpool hs/s | threadpool / inline |');
console.log('|--:|--:|--:|--:|');
for (const r of rows) console.log(`| ${r.clients} | ${r.inline} | ${r.offloaded} | ${r.ratio.toFixed(2)}x |`);
console.log(`\n'auto' offloads from ${AUTO_OFFLOAD_FROM} handshakes at once (handshakes in progress count both ends in this process); ${ROUNDS} rounds of ${HANDSHAKES} handshakes, medians; ${process.version}`);
if (args.json) writeFileSync(args.json, JSON.stringify({ node: process.version, rounds: ROUNDS, handshakes: HANDSHAKES, autoOffloadFrom: AUTO_OFFLOAD_FROM, rows }, null, 2));
for (const l of listeners.values()) await l.close({ tunnels: true });
