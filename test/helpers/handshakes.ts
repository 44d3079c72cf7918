/** Two v2 handshakes driven against each other in memory, through an optional tampering "network". */
import { expect } from 'chai';
import { FrameReader, type Frame } from '../../lib/protocol/frame.js';
import type { Handshake, HandshakeStep } from '../../lib/protocol/handshake.js';
import type { V2HandshakeResult } from '../../lib/protocol/v2/handshake.js';
import { QuantumTunnelError } from '../../lib/errors.js';

export function frames(bytes: Buffer): Frame[] {
  const r = new FrameReader();
  r.push(Buffer.from(bytes)); // a copy: records are decrypted in place
  const out: Frame[] = [];
  for (let f = r.nextFrame(); f !== null; f = r.nextFrame()) out.push(f);
  return out;
}

export function frame(bytes: Buffer): Frame {
  const all = frames(bytes);
  expect(all).to.have.length(1);
  return all[0]!;
}

export type Tamper = (from: 'client' | 'server', bytes: Buffer, index: number) => Buffer;

/** Runs both sides, optionally through a tampering "network"; returns both results. */
export async function converse(client: Handshake, server: Handshake, tamper?: Tamper): Promise<[V2HandshakeResult, V2HandshakeResult]> {
  let c: HandshakeStep = await client.start();
  let s: HandshakeStep = await server.start();
  let sent = 0;
  const toServer: Buffer[] = [...c.send];
  const toClient: Buffer[] = [...s.send];
  for (let turn = 0; turn < 20; turn++) {
    if (c.result && s.result) return [c.result as V2HandshakeResult, s.result as V2HandshakeResult];
    if (toServer.length > 0 && s.next !== 'done') {
      const bytes = tamper ? tamper('client', toServer.shift()!, sent++) : toServer.shift()!;
      s = await server.receive(frame(bytes));
      toClient.push(...s.send);
    } else if (toClient.length > 0 && c.next !== 'done') {
      const bytes = tamper ? tamper('server', toClient.shift()!, sent++) : toClient.shift()!;
      c = await client.receive(frame(bytes));
      toServer.push(...c.send);
    } else if (c.result && toServer.length > 0) {
      const bytes = toServer.shift()!;
      s = await server.receive(frame(bytes));
    } else {
      break;
    }
  }
  if (c.result && s.result) return [c.result as V2HandshakeResult, s.result as V2HandshakeResult];
  throw new Error('the handshake did not finish');
}


/** Resolves when `p` rejects with a QuantumTunnelError of `code` (fails the test otherwise). */
export async function rejects(p: Promise<unknown>, code: string): Promise<QuantumTunnelError> {
  try {
    await p;
  } catch (err) {
    expect(err).to.be.instanceOf(QuantumTunnelError);
    expect((err as QuantumTunnelError).code, (err as Error).message).to.equal(code);
    return err as QuantumTunnelError;
  }
  return expect.fail(`expected ${code}`);
}
