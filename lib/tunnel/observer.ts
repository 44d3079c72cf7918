/**
 * Observation hooks: how metrics, tracing and logging (lib/ops) watch tunnels without the tunnel
 * layer knowing about them. Every hook is optional and called synchronously; a hook that throws
 * is ignored (observability must never break a tunnel). Traffic is reported per write/read batch,
 * not per record, to stay off the hot path.
 */
import { isArray } from '../crypto/bytes.js';

/** Who is on the other end (never secret). */
export interface PeerAddress {
  /** The peer's IP address (behind a PROXY protocol balancer: the client its header named). */
  address: string | undefined;
  /** The peer's TCP port. */
  port: number | undefined;
}

/** What {@link TunnelObserver.onHandshakeStart} is told about a handshake that begins. */
export interface HandshakeContext extends PeerAddress {
  /** Which side of the handshake this end is. */
  role: 'client' | 'server';
  /** A resumption ticket was offered (client) or received (server). */
  resumptionAttempted: boolean;
}

/** The result of a completed handshake. */
export interface HandshakeOutcome {
  /** The protocol version: 'v2', or 'v1' in legacy mode. */
  protocol: string;
  /** The cipher suite, e.g. 'AES-256-GCM'. */
  suite: string;
  /** The key exchange group (protocol v2), e.g. 'P-384 + ML-KEM-1024'. */
  group?: string;
  /** The session was resumed from a ticket. */
  resumed: boolean;
  /** A ticket was offered (client) or received (server); with `resumed` false it was refused. */
  resumptionAttempted: boolean;
  /** How long the handshake took, in milliseconds. */
  durationMs: number;
  /** FIPS mode was on. */
  fips: boolean;
}

/** Returned by onHandshakeStart to follow one handshake (a tracing span, for example). */
export interface HandshakeWatch {
  /** The handshake completed. */
  succeeded?(outcome: HandshakeOutcome): void;
  /** The handshake failed with this `ERR_QT_*` code. */
  failed?(errorCode: string): void;
}

/** Returned by onRekeyStart to follow one key update. */
export interface RekeyWatch {
  /** The key update completed. */
  succeeded?(): void;
  /** The key update failed with this `ERR_QT_*` code (the tunnel is closed). */
  failed?(errorCode: string): void;
}

/**
 * Hooks that watch tunnels: give observers to `listen()` and `dial()` through their `observer`
 * option. {@link TunnelMetrics}, {@link TracingObserver} and {@link LoggingObserver} implement it.
 * Every hook is optional and called synchronously; a hook that throws is ignored.
 */
export interface TunnelObserver {
  /** A TCP connection was accepted by a listener (before any admission check). */
  onConnection?(peer: PeerAddress): void;
  /**
   * A connection, handshake or rekey was refused before any crypto: by admission control
   * (`connection`, `handshake`, `rekey`) or by the listener's own caps on handshakes in progress
   * (`pending-handshakes`: the total or the per-address cap was reached).
   */
  onRateLimited?(kind: RateLimitKind, peer: PeerAddress): void;
  /** Handshakes in progress on a listener changed (a gauge: the current number). */
  onPendingHandshakes?(count: number): void;
  /**
   * A listener's tunnel failed and the application had attached no 'error' listener to it: the
   * error went to the listener's `tunnelError` event instead of crashing the process.
   */
  onTunnelError?(errorCode: string, peer: PeerAddress): void;
  /** A handshake begins; the watch returned, if any, learns how it ends. */
  onHandshakeStart?(context: HandshakeContext): HandshakeWatch | void;
  /** A tunnel is established (after onHandshakeStart's watch succeeded). */
  onTunnelOpen?(info: { role: 'client' | 'server'; protocol: string; suite: string; group?: string; resumed: boolean } & PeerAddress): void;
  /** Plaintext bytes and records sent or received by one tunnel, in batches. */
  onTraffic?(direction: 'sent' | 'received', bytes: number, records: number): void;
  /** A replayed record was refused (protocol v1; the tunnel is closed). */
  onReplayBlocked?(peer: PeerAddress): void;
  /** A record failed authentication (the tunnel is closed). */
  onAuthFailure?(peer: PeerAddress): void;
  /** A malformed or unexpected message ended a tunnel (after the handshake). */
  onProtocolError?(errorCode: string, peer: PeerAddress): void;
  /** An encryption failure while sending (nonce budget, native failure). */
  onEncryptError?(errorCode: string): void;
  /** A key update begins, started by this side or by the peer; the watch learns how it ends. */
  onRekeyStart?(initiatedByUs: boolean): RekeyWatch | void;
  /** A tunnel closed: `error` is the `ERR_QT_*` code when it failed; byte counts are plaintext. */
  onTunnelClose?(info: { error?: string; bytesSent: number; bytesReceived: number }): void;
}

/** Calls a hook on every observer, ignoring observers that throw. */
export class ObserverSet {
  private readonly list: TunnelObserver[];

  constructor(observers: TunnelObserver | readonly TunnelObserver[] | undefined) {
    this.list = observers === undefined ? [] : isArray(observers) ? [...observers] : [observers];
  }

  get empty(): boolean {
    return this.list.length === 0;
  }

  notify<K extends keyof TunnelObserver>(hook: K, ...args: Parameters<NonNullable<TunnelObserver[K]>>): void {
    for (const o of this.list) {
      try {
        (o[hook] as ((...a: unknown[]) => unknown) | undefined)?.apply(o, args);
      } catch {
        /* observers never break tunnels */
      }
    }
  }

  /** onHandshakeStart on each observer, combined into one watch. */
  startHandshake(context: HandshakeContext): Required<HandshakeWatch> {
    const watches = this.collect<HandshakeWatch>((o) => o.onHandshakeStart?.(context));
    return {
      succeeded: (outcome) => watches.forEach((w) => safe(() => w.succeeded?.(outcome))),
      failed: (code) => watches.forEach((w) => safe(() => w.failed?.(code))),
    };
  }

  startRekey(initiatedByUs: boolean): Required<RekeyWatch> {
    const watches = this.collect<RekeyWatch>((o) => o.onRekeyStart?.(initiatedByUs));
    return {
      succeeded: () => watches.forEach((w) => safe(() => w.succeeded?.())),
      failed: (code) => watches.forEach((w) => safe(() => w.failed?.(code))),
    };
  }

  private collect<W extends object>(start: (o: TunnelObserver) => W | void): W[] {
    const out: W[] = [];
    for (const o of this.list) {
      try {
        const w = start(o);
        if (w) out.push(w);
      } catch {
        /* ignored */
      }
    }
    return out;
  }
}

function safe(fn: () => void): void {
  try {
    fn();
  } catch {
    /* ignored */
  }
}

/** What {@link ConnectionAdmission.admit} answers (the ops RateLimiter's `admit` too). */
export type AdmissionVerdict =
  | {
      /** Admitted. */
      ok: true;
      /** Call once when the connection ends, to give its place back. */
      release: () => void;
    }
  | {
      /** Refused. */
      ok: false;
      /** Which limit refused it: `connection` the concurrent connections per address, `handshake` a handshake rate. */
      reason: 'connection' | 'handshake';
    };

/**
 * Admission control (rate limiting) consulted by a listener for every accepted connection, before
 * any cryptography. `release` is called when the connection ends.
 */
export interface ConnectionAdmission {
  /**
   * Admits a connection (call `release()` when it ends) or refuses it, naming which limit refused
   * it.
   */
  admit(peer: PeerAddress): AdmissionVerdict;
  /**
   * Consulted for each rekey a peer asks for (a rekey costs a key exchange, like a handshake):
   * false refuses it and the tunnel is closed. Absent: rekeys are limited only per tunnel.
   */
  admitRekey?(peer: PeerAddress): boolean;
}

/** Why something was refused before any crypto (see {@link TunnelObserver.onRateLimited}). */
export type RateLimitKind = 'connection' | 'handshake' | 'rekey' | 'pending-handshakes';
