/**
 * Where the handshake's key-exchange steps run (TunnelOptions.offloadCrypto): inline for a lone
 * handshake under 'auto', on the threadpool once AUTO_OFFLOAD_FROM handshakes run at once,
 * always with `true`, never with `false`. Observed by counting the one-call steps' `async`
 * argument (native/hybrid.cc), which is the only thing the policy changes.
 */
import { expect } from 'chai';
import { ErrorCode, dial, listen } from '../../lib/index.js';
import { native } from '../../lib/native.js';
import { hybridAvailable } from '../../lib/crypto/hybrid.js';
import { AUTO_OFFLOAD_FROM, handshakesInProgress } from '../../lib/tunnel/handshakeLoad.js';
import { assertEchoes, rejectsWithCode, Resources } from '../helpers/tunnel.js';

type Step = 'hybridClientShare' | 'hybridEncapsulate' | 'hybridDecapsulate';
const STEPS: Step[] = ['hybridClientShare', 'hybridEncapsulate', 'hybridDecapsulate'];

/** Counts each step's calls by its last argument (async), while `run` runs. */
async function countSteps(run: () => Promise<void>): Promise<{ inline: number; offloaded: number }> {
  const n = native as unknown as Record<Step, (...a: unknown[]) => unknown>;
  const original = new Map(STEPS.map((s) => [s, n[s]]));
  const seen = { inline: 0, offloaded: 0 };
  for (const s of STEPS) {
    const f = original.get(s)!;
    n[s] = (...a: unknown[]) => {
      if (a[a.length - 1] === true) seen.offloaded++;
      else seen.inline++;
      return f(...a);
    };
  }
  try {
    await run();
  } finally {
    for (const s of STEPS) n[s] = original.get(s)!;
  }
  return seen;
}

describe('offloadCrypto: where key-exchange steps run', function () {
  const res = new Resources();
  afterEach(() => res.cleanup());
  before(function () {
    if (!hybridAvailable()) this.skip(); // FIPS mode offloads ML-KEM operations only, not these steps
  });

  async function handshakes(option: boolean | 'auto' | undefined, count: number, atOnce: boolean): Promise<{ inline: number; offloaded: number }> {
    const opts = option === undefined ? {} : { offloadCrypto: option };
    const listener = await res.listen(opts, (t) => t.on('data', (d: Buffer) => t.write(d)));
    return countSteps(async () => {
      const one = async () => {
        const t = await res.dial(listener, opts);
        await assertEchoes(t);
        await t.close();
      };
      if (atOnce) await Promise.all(Array.from({ length: count }, one));
      else for (let i = 0; i < count; i++) await one();
    });
  }

  it("'auto' (the default) keeps a lone handshake's steps inline: three per handshake pair", async () => {
    const seen = await handshakes(undefined, 3, false);
    expect(seen).to.deep.equal({ inline: 9, offloaded: 0 });
    expect(handshakesInProgress()).to.equal(0);
  });

  it(`'auto' offloads while ${AUTO_OFFLOAD_FROM} or more handshakes run at once`, async () => {
    const seen = await handshakes('auto', 4 * AUTO_OFFLOAD_FROM, true);
    expect(seen.inline + seen.offloaded).to.equal(3 * 4 * AUTO_OFFLOAD_FROM);
    expect(seen.offloaded).to.be.greaterThan(0);
    expect(handshakesInProgress()).to.equal(0);
  });

  it('true offloads every step, false none, whatever the load', async () => {
    expect(await handshakes(true, 2, false)).to.deep.equal({ inline: 0, offloaded: 6 });
    expect(await handshakes(false, 4 * AUTO_OFFLOAD_FROM, true)).to.deep.equal({ inline: 3 * 4 * AUTO_OFFLOAD_FROM, offloaded: 0 });
  });

  it('an offloadCrypto that is not true, false or "auto" fails dial() and listen() before any connection', async () => {
    expect(() => listen({ port: 0, offloadCrypto: 'always' as unknown as boolean })).to.throw().with.property('code', ErrorCode.INVALID_ARGUMENT);
    await rejectsWithCode(dial({ host: '127.0.0.1', port: 9 }, { offloadCrypto: 1 as unknown as boolean }), ErrorCode.INVALID_ARGUMENT);
  });
});
