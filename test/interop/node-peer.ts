/**
 * One end of a protocol v2 tunnel in its own process, for the cross-version test: run it with
 * another Node binary (`node --import tsx test/interop/node-peer.ts server|client [port]`).
 * server: listens, prints {"port"}, echoes one tunnel, prints that tunnel's info and exits.
 * client: dials the port, sends a message, prints the echo and the tunnel's info and exits.
 */
import { dial, listen, type Tunnel } from '../../lib/index.js';

const [mode, port] = process.argv.slice(2);

function report(t: Tunnel, extra: Record<string, unknown> = {}): void {
  const i = t.info();
  console.log(JSON.stringify({ node: process.version, protocol: i.protocol, group: i.group, suite: i.suite, ...extra }));
}

if (mode === 'server') {
  const l = listen({ port: 0 });
  await l.ready;
  console.log(JSON.stringify({ port: l.address().port }));
  l.once('tunnel', (t: Tunnel) => {
    t.once('data', (d: Buffer) => {
      t.write(d);
      report(t);
      t.end();
      setTimeout(() => process.exit(0), 200);
    });
  });
} else {
  const t = await dial({ host: '127.0.0.1', port: Number(port) });
  t.write(`hello from Node ${process.version}`);
  const echo = await new Promise<string>((resolve) => t.once('data', (d: Buffer) => resolve(d.toString())));
  report(t, { echo });
  t.destroy();
  process.exit(0);
}
