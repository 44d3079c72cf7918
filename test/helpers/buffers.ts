/** Hostile-buffer helpers shared by the native re-entrancy tests (detaching, fresh ArrayBuffers, typed errors). */
import { expect } from 'chai';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { QuantumTunnelError } from '../../lib/index.js';

setFlagsFromString('--expose-gc');
/** A full garbage collection, so a detached buffer's memory is really gone. */
export const collectGarbage = runInNewContext('gc') as () => void;

/** Asserts that `fn` throws a QuantumTunnelError with `code`, and returns it. */
export function expectCode(fn: () => unknown, code: string): QuantumTunnelError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught, `expected a QuantumTunnelError ${code}`).to.be.instanceOf(QuantumTunnelError);
  expect((caught as QuantumTunnelError).code, (caught as Error).message).to.equal(code);
  return caught as QuantumTunnelError;
}

/** Asserts that `p` rejects with a QuantumTunnelError with `code`. */
export async function expectReject(p: Promise<unknown>, code: string): Promise<void> {
  try {
    await p;
  } catch (err) {
    expect(err, `expected a QuantumTunnelError ${code}`).to.be.instanceOf(QuantumTunnelError);
    expect((err as QuantumTunnelError).code, (err as Error).message).to.equal(code);
    return;
  }
  expect.fail(`expected ${code}`);
}

/** A copy of `bytes` over an ArrayBuffer of its own (transferable, unlike Node's Buffer pool). */
export function own(bytes: Uint8Array | string): Uint8Array {
  const src = typeof bytes === 'string' ? Buffer.from(bytes) : bytes;
  const u = new Uint8Array(new ArrayBuffer(src.length));
  u.set(src);
  return u;
}

/** Detaches `buffer` (its views become zero-length) and collects garbage. */
export function detach(buffer: ArrayBufferLike): void {
  structuredClone(buffer, { transfer: [buffer as ArrayBuffer] });
  collectGarbage();
  expect(buffer.byteLength).to.equal(0);
}

/** A copy of `items` whose element `index` is a getter: it runs `action`, then returns the item. */
export function withGetter<T>(items: T[], index: number, action: () => void): T[] {
  const a = [...items];
  Object.defineProperty(a, index, {
    get: () => {
      action();
      return items[index];
    },
    enumerable: true,
    configurable: true,
  });
  return a;
}
