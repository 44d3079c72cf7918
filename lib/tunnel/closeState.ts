/**
 * How a tunnel closes and how it ended, decided in one place: which end of the connection is an
 * expected close and which a truncation or failure, and whether a failure is still reported as
 * an 'error' (not once the application asked to close).
 */
import { ErrorCode, QuantumTunnelError, qtError } from '../errors.js';

/**
 * How a tunnel ended, from `info().closeState`:
 * - `open`: not closed yet;
 * - `clean`: the peer's close_notify arrived (everything it sent was received; in protocol v1 an
 *   active attacker can forge one, docs/SECURITY.md);
 * - `unanswered`: we sent close_notify and the peer closed its side without one (a reference peer
 *   never answers);
 * - `truncated`: the connection ended without the peer's close_notify while we were not closing:
 *   data may have been cut short (ERR_QT_TRUNCATED);
 * - `failed`: a protocol, crypto or socket error ended it.
 */
export type CloseState = 'open' | 'clean' | 'unanswered' | 'truncated' | 'failed';

export class CloseTracker {
  #state: CloseState = 'open';
  #error: string | undefined;
  /** close() was called: failures from then on end the tunnel without an 'error' event. */
  closeRequested = false;
  /** The peer's close_notify (or Close) arrived. */
  peerClosed = false;

  constructor(private readonly halfOpen: boolean) {}

  get state(): CloseState {
    return this.#state;
  }

  /** The code of the error that ended the tunnel (truncated or failed). */
  get error(): string | undefined {
    return this.#error;
  }

  /**
   * We are closing both directions: close() was called, or end() without allowHalfOpen. A
   * half-open tunnel that ended its side still expects the peer's data up to its close_notify.
   */
  closingByUs(writableEnded: boolean): boolean {
    return this.closeRequested || (!this.halfOpen && writableEnded);
  }

  /**
   * The connection ended (the peer's FIN, a socket error, the socket closing): undefined when
   * that is an expected close (after the peer's close_notify, or while we close), otherwise the
   * error that ends the tunnel.
   */
  connectionEnded(how: 'fin' | 'error' | 'close', writableEnded: boolean, cause?: Error): QuantumTunnelError | undefined {
    if (this.peerClosed || this.closingByUs(writableEnded)) return undefined;
    if (how === 'error') return qtError(ErrorCode.CONNECTION_FAILED, 'socket error', { cause });
    return qtError(ErrorCode.TRUNCATED, how === 'fin' ? 'the peer closed the connection without close_notify' : 'the connection closed without close_notify');
  }

  /** Records how the tunnel ended (the first call counts); returns the error to emit, if any. */
  ended(err: Error | null | undefined): Error | undefined {
    if (this.#state === 'open') {
      if (err) {
        const code = err instanceof QuantumTunnelError ? err.code : 'ERR_UNKNOWN';
        this.#state = code === ErrorCode.TRUNCATED ? 'truncated' : 'failed';
        this.#error = code;
      } else {
        this.#state = this.peerClosed ? 'clean' : 'unanswered';
      }
    }
    return err && !this.closeRequested ? err : undefined;
  }

  /** The error messages() reports when it asks after the tunnel already ended with a failure. */
  failure(): QuantumTunnelError | undefined {
    if (this.#state === 'truncated') return qtError(ErrorCode.TRUNCATED, 'the connection ended without close_notify');
    if (this.#state === 'failed' && !this.closeRequested) return qtError(ErrorCode.TUNNEL_CLOSED, `the tunnel failed (${this.#error ?? 'unknown'})`);
    return undefined;
  }
}
