/**
 * TCP proxies for the tunnel tests, on 127.0.0.1:0 in front of a target port:
 *
 * - startDelayProxy: a delay line. Every chunk, FIN and reset reaches the other side `delayMs`
 *   after it arrived, in order, so a round trip through it costs 2·delayMs more. It proves how
 *   many round trips a handshake takes: time to the first application byte ≈ k · RTT.
 * - startFrameRewriteProxy: parses the frame stream of each direction and lets a callback pass,
 *   rewrite, drop or multiply each frame (downgrade tests that rewrite hellos, drop and reorder
 *   attacks). By default it forwards every byte as it came.
 *
 * Both connect to the target as soon as a client connects and forward half-closes (a FIN in one
 * direction leaves the other open) and resets (a reset on one side resets the other).
 */
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { encodeFrame, encodeHandshakeRecord } from '../../lib/protocol/frame.js';

export { encodeFrame, encodeHandshakeRecord };

export interface Proxy {
  /** The proxy's port on 127.0.0.1. */
  port: number;
  /** Stops listening and destroys every open connection. */
  close(): Promise<void>;
  /** Connections accepted so far. */
  readonly connections: number;
}

/**
 * What one direction of a connection does with its bytes. `data` and `end` come in stream order;
 * `out` is the other socket.
 */
interface Direction {
  data(chunk: Buffer): void;
  end(): void;
  reset(): void;
  /** Drops pending work (timers) when the connection is torn down. */
  dispose(): void;
}

type DirectionFactory = (out: Socket, name: 'clientToServer' | 'serverToClient', connection: number, fail: () => void) => Direction;

/** Resets a socket (RST, not FIN) unless it is already gone. */
function reset(socket: Socket): void {
  if (socket.destroyed) return;
  socket.resetAndDestroy();
}

/** Feeds `from` into `direction`, with backpressure from `to` (a full write buffer pauses `from`). */
function attach(from: Socket, to: Socket, direction: Direction): void {
  let ended = false;
  let paused = false;
  from.on('data', (chunk: Buffer) => {
    direction.data(chunk);
    if (to.writableNeedDrain && !paused) {
      paused = true;
      from.pause();
      to.once('drain', () => {
        paused = false;
        from.resume();
      });
    }
  });
  from.on('end', () => {
    ended = true;
    direction.end();
  });
  // A reset or any other failure of one side reaches the other as a reset. A close after a clean
  // end in both directions needs nothing: the other side ended too.
  from.on('close', (hadError: boolean) => {
    if (!ended || hadError) direction.reset();
  });
  from.on('error', () => undefined);
}

async function startProxy(targetHost: string, targetPort: number, makeDirection: DirectionFactory): Promise<Proxy> {
  const open = new Set<{ dispose(): void }>();
  let connections = 0;
  const server: Server = createServer({ allowHalfOpen: true, noDelay: true }, (client) => {
    const connection = connections++;
    const upstream = connect({ host: targetHost, port: targetPort, allowHalfOpen: true, noDelay: true });
    const teardown = () => {
      up.dispose();
      down.dispose();
      reset(client);
      reset(upstream);
    };
    const up = makeDirection(upstream, 'clientToServer', connection, teardown);
    const down = makeDirection(client, 'serverToClient', connection, teardown);
    const entry = { dispose: teardown };
    open.add(entry);
    let closed = 0;
    const onClose = () => {
      if (++closed === 2) open.delete(entry);
    };
    client.on('close', onClose);
    upstream.on('close', onClose);
    attach(client, upstream, up);
    attach(upstream, client, down);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    get connections() {
      return connections;
    },
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const entry of open) entry.dispose();
      open.clear();
      await closed;
    },
  };
}

// ---- delay line ---------------------------------------------------------------------------------

export interface DelayProxyOptions {
  targetPort: number;
  targetHost?: string;
  /** One-way delay in ms: a round trip through the proxy costs 2·delayMs. */
  delayMs: number;
}

type Delayed = { due: number; chunk: Buffer } | { due: number; end: true } | { due: number; reset: true };

/**
 * A TCP proxy that delivers every chunk, FIN and reset `delayMs` after it arrived, in order.
 * Each item is due at its own arrival time + delayMs (one timer for the head of the queue,
 * re-armed from the clock), so delays never add up over many chunks.
 */
export function startDelayProxy({ targetPort, targetHost = '127.0.0.1', delayMs }: DelayProxyOptions): Promise<Proxy> {
  if (!(delayMs >= 0)) throw new RangeError('delayMs must be a non-negative number');
  return startProxy(targetHost, targetPort, (out) => {
    const queue: Delayed[] = [];
    let timer: NodeJS.Timeout | undefined;
    let disposed = false;
    const flush = () => {
      timer = undefined;
      const now = performance.now();
      while (queue.length > 0 && queue[0]!.due <= now) {
        const item = queue.shift()!;
        if ('chunk' in item) {
          if (!out.destroyed) out.write(item.chunk);
        } else if ('end' in item) {
          if (!out.destroyed) out.end();
        } else {
          queue.length = 0;
          reset(out);
        }
      }
      arm();
    };
    const arm = () => {
      if (timer === undefined && queue.length > 0) timer = setTimeout(flush, Math.max(0, queue[0]!.due - performance.now()));
    };
    const push = (item: Delayed) => {
      if (disposed) return;
      queue.push(item);
      arm();
    };
    return {
      data: (chunk) => push({ due: performance.now() + delayMs, chunk }),
      end: () => push({ due: performance.now() + delayMs, end: true }),
      reset: () => push({ due: performance.now() + delayMs, reset: true }),
      dispose: () => {
        disposed = true;
        if (timer !== undefined) clearTimeout(timer);
        timer = undefined;
        queue.length = 0;
      },
    };
  });
}

// ---- frame rewriting ----------------------------------------------------------------------------

/** The `type` given for a v1 encrypted handshake record (`BE32 length ‖ sealed`: the Finished messages). */
export const HANDSHAKE_RECORD = -1;

/** One unit of the stream, as the proxy parsed it. */
export interface WireFrame {
  /** The message type byte, or HANDSHAKE_RECORD. */
  type: number;
  /** The bytes after the header. */
  payload: Buffer;
  /** The whole unit as it came (header ‖ payload): return it to pass the unit through unchanged. */
  raw: Buffer;
}

/**
 * Decides what replaces one unit: a buffer or several (sent in order), or null to drop it.
 * `index` counts the units of this direction of this connection from 0 (0 is the hello);
 * `connection` counts the proxy's connections from 0. A callback that throws resets both sides.
 */
export type FrameRewrite = (frame: WireFrame, index: number, connection: number) => Buffer | Buffer[] | null;

/**
 * The header of the unit that starts with `firstByte`: a frame `type ‖ BE32 length` (5 bytes, v1
 * messages and v2 records alike), or a v1 encrypted handshake record `BE32 length` (4 bytes), told
 * apart as the handshake driver does: no message type is 0, and a record's length is at most
 * 65,536, so its first byte is 0.
 */
function headerLength(firstByte: number): number {
  return firstByte === 0 ? 4 : 5;
}

function parseHeader(header: Buffer): { type: number; length: number } {
  return header.length === 4 ? { type: HANDSHAKE_RECORD, length: header.readUInt32BE(0) } : { type: header[0]!, length: header.readUInt32BE(1) };
}

export interface FrameRewriteProxyOptions {
  targetPort: number;
  targetHost?: string;
  clientToServer?: FrameRewrite;
  serverToClient?: FrameRewrite;
  /**
   * Largest payload parsed, default 16 MiB. A header that declares more ends parsing in that
   * direction: from it on, bytes pass through as they come and the callback is no longer called.
   */
  maxFrameLength?: number;
}

const MiB = 2 ** 20;

/**
 * A TCP proxy that cuts each direction into units (frames may span chunks and chunks may hold many
 * frames) and forwards, for each unit, what its direction's callback returns. Without a callback
 * a direction is forwarded byte for byte. Bytes of an incomplete unit at a FIN are forwarded as
 * they are, then the FIN.
 */
export function startFrameRewriteProxy(options: FrameRewriteProxyOptions): Promise<Proxy> {
  const maxFrameLength = options.maxFrameLength ?? 16 * MiB;
  return startProxy(options.targetHost ?? '127.0.0.1', options.targetPort, (out, name, connection, fail) => {
    const rewrite = options[name];
    let pending: Buffer[] = [];
    let buffered = 0;
    let index = 0;
    /** The unit being assembled once its header is in: total length, header length, type. */
    let unit: { length: number; headerLength: number; type: number } | undefined;
    let raw = rewrite === undefined; // no callback, or parsing given up: forward bytes as they come
    const write = (bytes: Buffer) => {
      if (bytes.length > 0 && !out.destroyed) out.write(bytes);
    };
    /** The first n buffered bytes (n <= buffered); `consume` removes them. Copies only when they span chunks. */
    const take = (n: number, consume: boolean): Buffer => {
      if (pending[0]!.length < n) pending = [Buffer.concat(pending, buffered)];
      const first = pending[0]!;
      if (consume) {
        if (first.length > n) pending[0] = first.subarray(n);
        else pending.shift();
        buffered -= n;
      }
      return first.subarray(0, n);
    };
    /** The next complete unit, or null (also when a header declares too much: then `raw` is set). */
    const nextUnit = (): WireFrame | null => {
      if (unit === undefined) {
        if (buffered === 0) return null;
        const header = headerLength(pending[0]![0]!);
        if (buffered < header) return null;
        const { type, length } = parseHeader(take(header, false));
        if (length > maxFrameLength) {
          raw = true;
          return null;
        }
        unit = { length: header + length, headerLength: header, type };
      }
      if (buffered < unit.length) return null;
      // A copy, so a callback may keep or alter it without touching the proxy's buffers.
      const bytes = Buffer.from(take(unit.length, true));
      const frame = { type: unit.type, payload: bytes.subarray(unit.headerLength), raw: bytes };
      unit = undefined;
      return frame;
    };
    const drainRaw = () => {
      const rest = buffered > 0 ? Buffer.concat(pending, buffered) : undefined;
      pending = [];
      buffered = 0;
      if (rest) write(rest);
    };
    return {
      data: (chunk) => {
        if (raw) return write(chunk);
        pending.push(chunk);
        buffered += chunk.length;
        const outputs: Buffer[] = [];
        try {
          for (let frame = nextUnit(); frame !== null; frame = nextUnit()) {
            const result = rewrite!(frame, index++, connection);
            if (result === null) continue;
            outputs.push(...(Array.isArray(result) ? result : [result]));
          }
        } catch {
          fail();
          return;
        }
        if (outputs.length > 0) write(outputs.length === 1 ? outputs[0]! : Buffer.concat(outputs));
        if (raw) drainRaw();
      },
      end: () => {
        drainRaw();
        if (!out.destroyed) out.end();
      },
      reset: () => reset(out),
      dispose: () => {
        pending = [];
        buffered = 0;
        raw = true;
      },
    };
  });
}

/** A TCP relay to `targetPort` whose freeze() silently drops everything from then on (a path that dies without a FIN or reset). */
export async function startFreezableRelay(targetPort: number): Promise<{ port: number; freeze(): void; close(): Promise<void> }> {
  const sockets: Socket[] = [];
  let frozen = false;
  const server = createServer((inbound) => {
    const outbound = connect({ host: '127.0.0.1', port: targetPort });
    sockets.push(inbound, outbound);
    for (const s of [inbound, outbound]) s.on('error', () => undefined);
    inbound.on('data', (d) => frozen || outbound.write(d));
    outbound.on('data', (d) => frozen || inbound.write(d));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    freeze: () => (frozen = true),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
