/**
 * A process the hostile tests attack from outside (test/tunnel/hostile.test.ts). It is written the
 * way the README shows an application: no 'error' listener on any tunnel, no `tunnelError`
 * listener, no uncaughtException handler. An unhandled 'error' event therefore kills it, which
 * is what the tests look for.
 *
 *   child.ts server pipe        listener.on('tunnel', (t) => t.pipe(t))
 *   child.ts server messages    for await (const m of t.messages()) await t.send(m), in try/catch
 *   child.ts server <mode> legacy  the same, listening with legacyV1 (v1 clients too)
 *   child.ts close <closeTimeoutMs> <port>...
 *                               dial each port, write a message, await tunnel.close()
 *
 * It reports on stdout, one JSON object a line. A server prints {event:'listening', port} and then
 * {event:'close', error} for every tunnel that closes (an observer: observers are not 'error'
 * listeners); the command `rss` on stdin prints {event:'rss', rss, maxRss} (bytes). It exits when
 * stdin ends. `close` prints {event:'closed', ...} per port and then {event:'done'}, then exits.
 */
import { dial, listen, type Tunnel } from '../../../lib/index.js';

function report(value: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

const [command, ...args] = process.argv.slice(2);

if (command === 'server') {
  const mode = args[0];
  const listener = listen({
    host: '127.0.0.1',
    port: 0,
    legacyV1: args[1] === 'legacy',
    observer: {
      onTunnelClose: (info) => report({ event: 'close', error: info.error ?? null }),
    },
  });
  await listener.ready;
  if (mode === 'pipe') {
    listener.on('tunnel', (t: Tunnel) => t.pipe(t));
  } else {
    listener.on('tunnel', async (t: Tunnel) => {
      try {
        for await (const m of t.messages()) await t.send(m);
      } catch (err) {
        report({ event: 'caught', code: (err as { code?: string }).code ?? null });
      }
    });
  }
  process.stdin.setEncoding('utf8');
  let pending = '';
  process.stdin.on('data', (chunk: string) => {
    pending += chunk;
    for (let i = pending.indexOf('\n'); i >= 0; i = pending.indexOf('\n')) {
      const line = pending.slice(0, i).trim();
      pending = pending.slice(i + 1);
      if (line === 'rss') report({ event: 'rss', rss: process.memoryUsage().rss, maxRss: process.resourceUsage().maxRSS * 1024 });
    }
  });
  process.stdin.on('end', () => {
    listener.close().finally(() => process.exit(0));
  });
  report({ event: 'listening', port: listener.address().port });
} else if (command === 'close') {
  const closeTimeoutMs = Number(args[0]);
  for (const port of args.slice(1)) {
    const t = await dial({ host: '127.0.0.1', port: Number(port) }, { closeTimeoutMs });
    t.write('hello before close');
    const started = Date.now();
    await t.close();
    report({ event: 'closed', port: Number(port), ms: Date.now() - started, closeState: t.info().closeState ?? null });
  }
  // Long enough for a late 'error' event (which would kill this process) to show up.
  setTimeout(() => {
    report({ event: 'done' });
    process.exit(0);
  }, 300);
} else {
  process.stderr.write(`unknown command ${command}\n`);
  process.exit(2);
}
