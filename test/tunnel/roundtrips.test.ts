/**
 * The round trip protocol v2 saves (issue 9, item 5), proved through a proxy that delays every
 * byte by D each way, so each one-way trip costs D and CPU time is small beside it. From dial()
 * to the first echoed byte:
 *
 *   v2: ClientHello → server flight → client Finished + data → echo         = 4 one-way trips
 *   v1: ClientHello → ServerHello → ClientFinished → ServerFinished → data → echo = 6
 *
 * Counted, not timed: the number of trips is the elapsed time divided by D, rounded down. The
 * physical lower bounds (4 and 6 trips) cannot be undercut; the upper bound for v2 leaves a whole
 * trip (D) of slack for a loaded machine.
 */
import { expect } from 'chai';
import { dial, listen, type Tunnel } from '../../lib/index.js';
import { startDelayProxy } from '../helpers/proxies.js';
import { streamIn, streamOut } from '../helpers/tunnel.js';

const D = 250;

async function tripsToFirstByte(legacyV1: boolean): Promise<number> {
  const l = listen({ port: 0, legacyV1 });
  l.on('tunnel', (t: Tunnel) => t.once('data', (d: Buffer) => t.write(d)));
  await l.ready;
  const proxy = await startDelayProxy({ targetPort: l.address().port, delayMs: D });
  try {
    const started = performance.now();
    const t = await dial({ host: '127.0.0.1', port: proxy.port }, { legacyV1 });
    t.write('x');
    await new Promise<void>((resolve) => t.once('data', () => resolve()));
    const elapsed = performance.now() - started;
    t.destroy();
    console.log(`      ${legacyV1 ? 'v1' : 'v2'}: ${elapsed.toFixed(0)} ms with ${D} ms each way`);
    return Math.floor(elapsed / D);
  } finally {
    await proxy.close();
    await l.close({ tunnels: true });
  }
}

describe('round trips to the first application byte (delaying proxy)', function () {
  this.timeout(30_000);

  it('v2 sends data with its Finished: the echo arrives after 2 round trips (4 one-way trips), v1 needs 3', async () => {
    const v2 = await tripsToFirstByte(false);
    const v1 = await tripsToFirstByte(true);
    expect(v2, 'v2 one-way trips').to.equal(4);
    expect(v1, 'v1 one-way trips').to.be.at.least(6);
    expect(v1 - v2).to.be.at.least(2); // one round trip saved
  });

  it('key updates over a 40 ms round trip while data flows both ways: acknowledged, both tiers, either side, nothing lost', async () => {
    const l = listen({ port: 0, rekeyMinIntervalMs: 0 });
    const served = new Promise<Tunnel>((resolve) => l.once('tunnel', resolve));
    await l.ready;
    const proxy = await startDelayProxy({ targetPort: l.address().port, delayMs: 20 });
    try {
      const client = await dial({ host: '127.0.0.1', port: proxy.port }, { rekeyMinIntervalMs: 0 });
      const server = await served;
      const total = 4 * 2 ** 20;
      const up = streamIn(server, total);
      const down = streamIn(client, total);
      const sending = Promise.all([streamOut(client, total, 1), streamOut(server, total, 2)]);
      await client.rekey({ mode: 'kem' });
      await server.rekey({ mode: 'symmetric' });
      await Promise.all([client.rekey({ mode: 'symmetric' }), server.rekey({ mode: 'kem' })]);
      const [sentUp, sentDown] = await sending;
      expect(await up.done).to.equal(sentUp);
      expect(await down.done).to.equal(sentDown);
      expect(client.info().rekeys).to.be.at.least(3);
      expect(server.info().rekeys).to.equal(client.info().rekeys);
      client.destroy();
    } finally {
      await proxy.close();
      await l.close({ tunnels: true });
    }
  });
});
