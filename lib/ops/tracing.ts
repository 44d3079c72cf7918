/**
 * OpenTelemetry tracing over the tunnel's observer hooks. Depends on @opentelemetry/api only: with
 * no SDK registered every span is a no-op; register a TracerProvider (or pass `tracer`) to record.
 *
 * Spans (names, kinds, attributes):
 * - `quantum.handshake.initiator` (CLIENT) and `quantum.handshake.responder` (SERVER), one per
 *   handshake, child of the context active when the handshake started (so a dial() inside a user
 *   span nests under it). Attributes at start: `quantum.role`, `quantum.resumption_attempted`,
 *   `network.peer.address` (masked by default, see `peerAddress`), `network.peer.port`; at the end:
 *   `quantum.outcome` (`success` | `failure`), `quantum.protocol`, `quantum.suite`, `quantum.group`
 *   (protocol v2), `quantum.resumed`, `quantum.fips`,
 *   `quantum.handshake.duration_ms`, or `error.type` (the error code) with status ERROR.
 * - `quantum.resumption` (INTERNAL), a child of the handshake span covering the same interval,
 *   emitted when a resumption was attempted (client: a ticket was offered) or happened (server:
 *   the outcome says `resumed`). Attributes `quantum.resumed` and `quantum.outcome` (`resumed`,
 *   `fallback` = full handshake instead, or `failure`). The server cannot see a rejected ticket
 *   through the current hooks, so server-side fallbacks produce no resumption span.
 * - `quantum.rekey` (INTERNAL), one per rekey on each end, with `quantum.rekey.initiated_by_us`,
 *   `quantum.fips`, `quantum.outcome` and, on failure, `error.type` and status ERROR.
 *
 * Per-record spans (the reference's encrypt/decrypt spans) are deliberately not emitted: they
 * would cost more than the records themselves.
 */
import { context as otelContext, SpanKind, SpanStatusCode, trace, type Attributes, type Span, type Tracer } from '@opentelemetry/api';
import { cryptoPolicy } from '../crypto/policy.js';
import type { HandshakeContext, HandshakeOutcome, HandshakeWatch, RekeyWatch, TunnelObserver } from '../tunnel/observer.js';
import { maskAddress } from './logger.js';
import { VERSION } from './version.js';

/** The names of the spans {@link TracingObserver} emits. */
export const SpanNames = {
  /** A client's handshake (span kind CLIENT). */
  HANDSHAKE_INITIATOR: 'quantum.handshake.initiator',
  /** A server's handshake (span kind SERVER). */
  HANDSHAKE_RESPONDER: 'quantum.handshake.responder',
  /** A session resumption attempt, child of the handshake span (INTERNAL). */
  RESUMPTION: 'quantum.resumption',
  /** One key update on one end (INTERNAL). */
  REKEY: 'quantum.rekey',
} as const;

/** Options of {@link TracingObserver}. */
export interface TracingObserverOptions {
  /** Default: `trace.getTracer('quantum-tunnel', VERSION)` (the global provider, resolved lazily). */
  tracer?: Tracer;
  /**
   * FIPS mode for the `quantum.fips` attribute: a function (read at each span) or a fixed value.
   * Default: the handshake outcome's flag or whether FIPS mode is active.
   */
  fipsMode?: (() => boolean) | boolean;
  /** `network.peer.address`: `masked` (default, as in the logs), `full`, or `none`. */
  peerAddress?: 'masked' | 'full' | 'none';
}

/** Emits OpenTelemetry spans for handshakes, resumptions and rekeys. */
export class TracingObserver implements TunnelObserver {
  private readonly tracer: Tracer;
  private readonly fipsMode: () => boolean;
  private readonly peerAddress: 'masked' | 'full' | 'none';

  constructor(options: TracingObserverOptions = {}) {
    this.tracer = options.tracer ?? trace.getTracer('quantum-tunnel', VERSION);
    const fips = options.fipsMode;
    this.fipsMode = typeof fips === 'function' ? fips : typeof fips === 'boolean' ? () => fips : () => cryptoPolicy.fips;
    this.peerAddress = options.peerAddress ?? 'masked';
  }

  private fips(fromOutcome = false): boolean {
    try {
      return fromOutcome || this.fipsMode() === true;
    } catch {
      return fromOutcome;
    }
  }

  onHandshakeStart(ctx: HandshakeContext): HandshakeWatch {
    const client = ctx.role === 'client';
    const startTime = Date.now();
    const attributes: Attributes = { 'quantum.role': ctx.role, 'quantum.resumption_attempted': ctx.resumptionAttempted };
    if (this.peerAddress !== 'none' && ctx.address !== undefined) {
      attributes['network.peer.address'] = this.peerAddress === 'full' ? ctx.address : maskAddress(ctx.address);
    }
    if (ctx.port !== undefined) attributes['network.peer.port'] = ctx.port;
    const parent = otelContext.active();
    const span = this.tracer.startSpan(
      client ? SpanNames.HANDSHAKE_INITIATOR : SpanNames.HANDSHAKE_RESPONDER,
      { kind: client ? SpanKind.CLIENT : SpanKind.SERVER, attributes, startTime },
      parent,
    );
    const resumption = (attrs: Attributes, error?: string) => {
      const child = this.tracer.startSpan(
        SpanNames.RESUMPTION,
        { kind: SpanKind.INTERNAL, startTime, attributes: { 'quantum.role': ctx.role, ...attrs } },
        trace.setSpan(parent, span),
      );
      if (error) child.setStatus({ code: SpanStatusCode.ERROR, message: error });
      child.end();
    };
    let done = false;
    return {
      succeeded: (outcome: HandshakeOutcome) => {
        if (done) return;
        done = true;
        if (ctx.resumptionAttempted || outcome.resumed) {
          resumption({ 'quantum.resumed': outcome.resumed, 'quantum.outcome': outcome.resumed ? 'resumed' : 'fallback' });
        }
        span.setAttributes({
          'quantum.outcome': 'success',
          'quantum.protocol': outcome.protocol,
          'quantum.suite': outcome.suite,
          ...(outcome.group !== undefined ? { 'quantum.group': outcome.group } : {}),
          'quantum.resumed': outcome.resumed,
          'quantum.fips': this.fips(outcome.fips),
          'quantum.handshake.duration_ms': outcome.durationMs,
        });
        span.setStatus({ code: SpanStatusCode.OK });
        span.end();
      },
      failed: (code: string) => {
        if (done) return;
        done = true;
        if (ctx.resumptionAttempted) resumption({ 'quantum.resumed': false, 'quantum.outcome': 'failure', 'error.type': code }, code);
        endWithError(span, code, { 'quantum.fips': this.fips() });
      },
    };
  }

  onRekeyStart(initiatedByUs: boolean): RekeyWatch {
    const span = this.tracer.startSpan(SpanNames.REKEY, {
      kind: SpanKind.INTERNAL,
      attributes: { 'quantum.rekey.initiated_by_us': initiatedByUs, 'quantum.fips': this.fips() },
    });
    let done = false;
    return {
      succeeded: () => {
        if (done) return;
        done = true;
        span.setAttribute('quantum.outcome', 'success');
        span.setStatus({ code: SpanStatusCode.OK });
        span.end();
      },
      failed: (code: string) => {
        if (done) return;
        done = true;
        endWithError(span, code, {});
      },
    };
  }
}

function endWithError(span: Span, code: string, attributes: Attributes): void {
  span.setAttributes({ ...attributes, 'quantum.outcome': 'failure', 'error.type': code });
  span.setStatus({ code: SpanStatusCode.ERROR, message: code });
  span.end();
}
