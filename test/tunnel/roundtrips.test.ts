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
});
