import { expect } from 'chai';
import { once } from 'node:events';
import { dial, listen, type Tunnel } from '../../lib/index.js';

/** Resolves when the stream has closed, even if that already happened. */
function closed(t: Tunnel): Promise<unknown> {
  return t.closed ? Promise.resolve() : once(t, 'close');
}

async function readAll(t: Tunnel): Promise<string> {
  let s = '';
  t.on('data', (d: Buffer) => (s += d.toString()));
  await once(t, 'end');
  return s;
}

describe('tunnel close: half-open option and answering close_notify', () => {
  it('allowHalfOpen: the client ends its side, the server still replies, then both close cleanly', async () => {
    const l = listen({ port: 0, allowHalfOpen: true });
    await l.ready;
    l.on('tunnel', async (t: Tunnel) => {
      const request = await readAll(t); // the client's close_notify ends only this direction
      t.end(`reply to ${request}`);
    });
    const t = await dial({ host: '127.0.0.1', port: l.address().port }, { allowHalfOpen: true });
    const reply = readAll(t);
    t.end('request');
    expect(await reply).to.equal('reply to request');
    await closed(t);
    expect(t.errored).to.equal(null);
    await l.close({ tunnels: true });
  });

  it('without it, a close_notify is answered even when nobody reads (message mode): no error on either side', async () => {
    const l = listen({ port: 0 });
    await l.ready;
    const serverSide = new Promise<Tunnel>((resolve) => l.once('tunnel', resolve));
    const t = await dial({ host: '127.0.0.1', port: l.address().port });
    const server = await serverSide;
    const received: string[] = [];
    const loop = (async () => {
      for await (const m of server.messages()) received.push(m.toString());
    })();
    await t.send(Buffer.from('only message'));
    await t.close(); // resolves once the socket closed; the server must answer, not time out
    await loop;
    await closed(server);
    expect(received).to.deep.equal(['only message']);
    expect(server.errored).to.equal(null);
    expect(t.errored).to.equal(null);
    await l.close();
  });
});
