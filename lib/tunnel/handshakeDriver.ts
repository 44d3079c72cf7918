/**
 * Runs one side of the handshake over a socket: reads frames with a deadline, feeds the pure
 * state machines of lib/protocol/handshake.ts and writes what they return. Each connection has its
 * own driver, so one silent peer never delays another's handshake (§14 #5).
 */
import type { Socket } from 'node:net';
import { ErrorCode, QuantumTunnelError, qtError } from '../errors.js';
import { MessageType, messageTypeName } from '../protocol/constants.js';
import { cipherSuiteName } from '../protocol/suites.js';
import { FrameReader, type Frame } from '../protocol/frame.js';
import type { Handshake, HandshakeSummary } from '../protocol/handshake.js';
import {
  type InitiatorConfig,
  initiatorVersion,
  type ProtocolVersionSpec,
  type ResponderConfig,
  responderVersion,
  V1,
} from '../protocol/versions.js';
import { isPeerAlert, plaintextAlert } from '../protocol/v2/alerts.js';
import { decodeAlert, HANDSHAKE_FAILURE_ALERT } from '../protocol/messages.js';
import { cryptoPolicy } from '../crypto/policy.js';
import type { ObserverSet, PeerAddress } from './observer.js';
import { DEFAULT_MAX_HANDSHAKE_BYTES } from './options.js';
import * as handshakeLoad from './handshakeLoad.js';

/** A completed handshake: its version and result, the reader holding any bytes that came after it, and its duration. */
export interface Handshaken {
  version: ProtocolVersionSpec;
  result: HandshakeSummary;
  reader: FrameReader;
  durationMs: number;
}

/** Failures caused by what the peer sent: answered with a handshake_failure alert (§7.9). */
const ALERTED = new Set<string>([
  ErrorCode.MALFORMED_MESSAGE,
  ErrorCode.UNEXPECTED_MESSAGE,
  ErrorCode.UNSUPPORTED_VERSION,
  ErrorCode.UNSUPPORTED_CIPHER_SUITE,
  ErrorCode.HANDSHAKE_FAILED,
  ErrorCode.INVALID_KEY,
  ErrorCode.X25519_LOW_ORDER_POINT,
  ErrorCode.MESSAGE_TOO_LARGE,
  ErrorCode.PSK_MISMATCH,
  ErrorCode.SERVER_KEY_MISMATCH,
  ErrorCode.UNKNOWN_PEER,
  ErrorCode.CERTIFICATE_REQUIRED,
  ErrorCode.CERTIFICATE_MALFORMED,
  ErrorCode.CERTIFICATE_UNTRUSTED,
  ErrorCode.CERTIFICATE_EXPIRED,
  ErrorCode.CERTIFICATE_NAME_MISMATCH,
  ErrorCode.CERTIFICATE_REVOKED,
  ErrorCode.CERTIFICATE_REVOCATION_UNKNOWN,
  ErrorCode.CERTIFICATE_BAD_SIGNATURE,
  ErrorCode.CERTIFICATE_WRONG_PURPOSE,
]);

/** Reads frames and Finished records from a socket until the handshake is over. */
class SocketReader {
  readonly reader = new FrameReader();
  private waiter: (() => void) | undefined;
  private sawFrame = false;
  private failure: QuantumTunnelError | undefined;
  private readonly onData = (chunk: Buffer) => {
    this.reader.push(chunk);
    // Bounded: a peer that trickles a huge frame or never finishes fails here, not at the deadline.
    if (this.reader.buffered > this.maxBufferedBytes) {
      this.fail(qtError(ErrorCode.MESSAGE_TOO_LARGE, `more than ${this.maxBufferedBytes} bytes before the handshake completed`));
    }
    this.wake();
  };
  private readonly onEnd = () => this.fail(qtError(ErrorCode.CONNECTION_FAILED, 'peer closed the connection during the handshake'));
  private readonly onError = (err: Error) => this.fail(qtError(ErrorCode.CONNECTION_FAILED, 'socket error during the handshake', { cause: err }));

  constructor(private readonly socket: Socket, private readonly maxBufferedBytes: number) {
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onEnd);
    socket.on('error', this.onError);
  }

  fail(err: QuantumTunnelError): void {
    this.failure ??= err;
    this.wake();
  }

  /**
   * The next frame. Before the peer's first one, a first byte that is no message type of ours (an
   * HTTP or TLS peer, for example) means the peer does not speak the protocol: say so, rather
   * than reading its bytes as a frame length.
   */
  async frame(): Promise<Frame> {
    const first = !this.sawFrame;
    const frame = await this.until(() => {
      if (first && this.reader.buffered > 0 && messageTypeName(this.reader.firstByte()!) === 'Unknown') {
        throw qtError(ErrorCode.PROTOCOL_MISMATCH, 'the peer does not speak the quantum-tunnel protocol');
      }
      return this.reader.nextFrame();
    });
    this.sawFrame = true;
    return frame;
  }

  async handshakeRecord(): Promise<Buffer> {
    return this.until(() => {
      // A record's length is at most 65,536, so its first byte is 0: anything else here is a
      // frame, and an Alert in place of a Finished record is the peer refusing the handshake.
      if (this.reader.buffered > 0 && this.reader.firstByte() === MessageType.ALERT) {
        const frame = this.reader.nextFrame();
        if (frame === null) return null;
        throw qtError(ErrorCode.PEER_ALERT, `peer sent alert code ${decodeAlert(frame.payload)?.code ?? 'unknown'} during the handshake`);
      }
      return this.reader.nextHandshakeRecord();
    });
  }

  /** Stops reading; the socket is left paused so no byte is lost before the tunnel takes over. */
  detach(): FrameReader {
    this.socket.pause();
    this.socket.off('data', this.onData);
    this.socket.off('end', this.onEnd);
    this.socket.off('close', this.onEnd);
    this.socket.off('error', this.onError);
    return this.reader;
  }

  private async until<T>(next: () => T | null): Promise<T> {
    for (;;) {
      const value = next(); // throws on an oversized length
      if (value !== null) return value;
      if (this.failure) throw this.failure;
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }
}

interface DriveOptions {
  timeoutMs: number;
  /** Bytes the peer may have buffered before the handshake completes (default 16,384). */
  maxBufferedBytes?: number;
  signal?: AbortSignal;
  /**
   * The listener's abort without an AbortController per connection: the driver sets `abort`
   * while the handshake runs and clears it when it settles.
   */
  handle?: HandshakeHandle;
  observers?: ObserverSet;
  /** Who the peer is, when not the socket's own address (a client behind a PROXY protocol balancer). */
  peer?: PeerAddress;
}

/** How a listener aborts one handshake in progress (its close()). */
export interface HandshakeHandle {
  abort?: () => void;
}

/** Runs `steps` with the deadline and abort signal; on failure alerts the peer when it is at fault and drops the socket. */
async function drive(
  socket: Socket,
  options: DriveOptions & { role: 'client' | 'server'; resumptionAttempted: boolean },
  steps: (io: SocketReader, spoken: { version?: ProtocolVersionSpec }) => Promise<{ version: ProtocolVersionSpec; result: HandshakeSummary }>,
): Promise<Handshaken> {
  const started = performance.now();
  // Read while connected: the socket keeps the peer's address for the tunnel's info() even if the
  // connection drops right after the handshake.
  const peer = options.peer ?? { address: socket.remoteAddress, port: socket.remotePort };
  // The context and the outcome are only built for someone to read them.
  const watch = options.observers?.empty === false ? options.observers.startHandshake({
    role: options.role,
    resumptionAttempted: options.resumptionAttempted,
    ...peer,
  }) : undefined;
  const io = new SocketReader(socket, options.maxBufferedBytes ?? DEFAULT_MAX_HANDSHAKE_BYTES);
  const timer = options.timeoutMs > 0
    ? setTimeout(() => io.fail(qtError(ErrorCode.HANDSHAKE_TIMEOUT, `handshake not complete after ${options.timeoutMs} ms`)), options.timeoutMs)
    : undefined;
  const onAbort = () => io.fail(qtError(ErrorCode.ABORTED, 'handshake aborted'));
  const spoken: { version?: ProtocolVersionSpec } = {};
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (options.handle) options.handle.abort = onAbort;
  handshakeLoad.started();
  try {
    if (options.signal?.aborted) throw qtError(ErrorCode.ABORTED, 'handshake aborted');
    const { version, result } = await steps(io, spoken);
    const durationMs = performance.now() - started;
    watch?.succeeded({ protocol: version.name, suite: cipherSuiteName(result.suite), group: result.groupName, resumed: result.resumed, resumptionAttempted: result.resumptionAttempted, durationMs, fips: cryptoPolicy.fips });
    return { version, result, reader: io.detach(), durationMs };
  } catch (err) {
    io.detach();
    const error = err instanceof QuantumTunnelError ? err : qtError(ErrorCode.HANDSHAKE_FAILED, 'handshake failed', { cause: err });
    watch?.failed(error.code);
    // A peer's own alert is reported, never answered (v2's alerts name a reason such as PSK_MISMATCH).
    if (ALERTED.has(error.code) && !isPeerAlert(error) && socket.writable) {
      // v1 keeps its one handshake_failure alert byte for byte; v2 says which failure it was.
      socket.end(spoken.version === V1 ? HANDSHAKE_FAILURE_ALERT : plaintextAlert(error), () => socket.destroy());
      setTimeout(() => socket.destroy(), 1000).unref();
    } else {
      socket.destroy();
    }
    throw error;
  } finally {
    handshakeLoad.ended();
    if (timer) clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
    if (options.handle) options.handle.abort = undefined;
  }
}

/**
 * Corks the socket until the current tick's promise jobs have run, so the handshake's last flight
 * leaves in one write with what the tunnel and the application send right behind it (a ticket,
 * the first data, close_notify): the same bytes in fewer syscalls. end() uncorks at once; the
 * tunnel uncorks before it handles bytes that came behind the handshake.
 */
function holdWritesForThisTick(socket: Socket): void {
  socket.cork();
  process.nextTick(() => socket.uncork());
}

/** Sends writes still held now: before the socket is destroyed (that would drop them) or must answer the peer. */
export function releaseHeldWrites(socket: Socket): void {
  if (socket.writableCorked > 0) socket.uncork();
}

function write(socket: Socket, bytes: Buffer): void {
  if (!socket.writable) throw qtError(ErrorCode.CONNECTION_FAILED, 'socket closed during the handshake');
  socket.write(bytes);
}

/**
 * The one handshake loop of every version: send what the handshake returns, read what it asks
 * for next, until it has a result. `first` is a frame already read (the responder reads the
 * ClientHello before it knows the version).
 */
async function runSteps(socket: Socket, io: SocketReader, hs: Handshake, first?: Frame): Promise<HandshakeSummary> {
  try {
    let step = await hs.start();
    let pending = first;
    for (;;) {
      if (step.next === 'done') holdWritesForThisTick(socket);
      // One flight, one write (v2's server flight is three messages).
      if (step.send.length > 1) write(socket, Buffer.concat(step.send));
      else if (step.send.length === 1) write(socket, step.send[0]!);
      if (step.next === 'done') return step.result!;
      let input: Frame | Buffer;
      if (step.next === 'record') input = await io.handshakeRecord();
      else if (pending !== undefined) [input, pending] = [pending, undefined];
      else input = await io.frame();
      step = await hs.receive(input);
    }
  } finally {
    hs.destroy();
  }
}

export interface InitiatorDriveOptions extends DriveOptions {
  /** Speak protocol v1 (a Quantum-Go peer) instead of v2. */
  legacyV1: boolean;
  config: InitiatorConfig;
}

/** Client side, in the version dial() speaks. */
export function runInitiatorHandshake(socket: Socket, options: InitiatorDriveOptions): Promise<Handshaken> {
  const resumptionAttempted = options.config.resumption !== undefined || options.config.ticket !== undefined;
  return drive(socket, { ...options, role: 'client', resumptionAttempted }, async (io, spoken) => {
    const version = (spoken.version = initiatorVersion(options.legacyV1));
    const hs = await version.initiator(options.config);
    return { version, result: await runSteps(socket, io, hs) };
  });
}

export interface ResponderDriveOptions extends DriveOptions {
  /** Also answer v1 ClientHellos (legacy mode); otherwise they are refused. */
  acceptV1: boolean;
  config: ResponderConfig;
}

/** Server side, in the version the ClientHello asks for (protocol/versions.ts). */
export function runResponderHandshake(socket: Socket, options: ResponderDriveOptions): Promise<Handshaken> {
  return drive(socket, { ...options, role: 'server', resumptionAttempted: false }, async (io, spoken) => {
    const clientHello = await io.frame();
    const version = (spoken.version = responderVersion(clientHello, options.acceptV1));
    const hs = version.responder(options.config);
    return { version, result: await runSteps(socket, io, hs, clientHello) };
  });
}
