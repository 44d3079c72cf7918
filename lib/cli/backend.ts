/**
 * `forward`'s view of what it connects to: a probe of the backend service (the server side's
 * `--to`) that /readyz follows, and the metrics of failed connections on both sides.
 *
 * The probe is cached: a TCP connect (closed at once) every `intervalMs` at most, never one per
 * scrape. A forwarded connection that reached the backend counts as a successful probe, so a busy
 * forwarder does not probe at all; one that could not connect marks the backend down at once.
 */
import { connect as tcpConnect } from 'node:net';
import { Counter, Gauge, type Registry } from 'prom-client';
import { ErrorCode } from '../errors.js';
import type { CheckResult } from '../ops/index.js';
import { formatHostPort, type HostPort } from './args.js';

/**
 * Why a connection failed, as a bounded metric label: the backend (`refused`, `timeout`,
 * `unreachable`, `reset`, `dns`) or, on the client side, also the tunnel's `handshake`.
 */
export const FAILURE_REASONS = ['refused', 'timeout', 'unreachable', 'reset', 'dns', 'handshake', 'other'] as const;
export type FailureReason = (typeof FAILURE_REASONS)[number];

const SYSTEM_REASON: Record<string, FailureReason> = {
  ECONNREFUSED: 'refused',
  ETIMEDOUT: 'timeout',
  EHOSTUNREACH: 'unreachable',
  ENETUNREACH: 'unreachable',
  EHOSTDOWN: 'unreachable',
  ENETDOWN: 'unreachable',
  EADDRNOTAVAIL: 'unreachable',
  ECONNRESET: 'reset',
  ECONNABORTED: 'reset',
  EPIPE: 'reset',
  ENOTFOUND: 'dns',
  EAI_AGAIN: 'dns',
  EAI_FAIL: 'dns',
  EAI_NONAME: 'dns',
};

/** Errors of a handshake that ran (the peer is there, but it is not a forward server we can use). */
const HANDSHAKE_CODES: ReadonlySet<string> = new Set([
  ErrorCode.HANDSHAKE_FAILED,
  ErrorCode.PROTOCOL_MISMATCH,
  ErrorCode.UNSUPPORTED_VERSION,
  ErrorCode.UNSUPPORTED_CIPHER_SUITE,
  ErrorCode.PEER_ALERT,
  ErrorCode.MALFORMED_MESSAGE,
  ErrorCode.UNEXPECTED_MESSAGE,
  ErrorCode.MESSAGE_TOO_LARGE,
  ErrorCode.AUTHENTICATION_FAILED,
  ErrorCode.X25519_LOW_ORDER_POINT,
  ErrorCode.INVALID_KEY,
  ErrorCode.FIPS_NOT_APPROVED,
  ErrorCode.PSK_MISMATCH,
]);

/** A connect that did not finish within its limit (the forwarder's own timer). */
export class ConnectTimeoutError extends Error {
  readonly code = 'ETIMEDOUT';
  constructor(ms: number) {
    super(`connect timed out after ${ms} ms`);
    this.name = 'ConnectTimeoutError';
  }
}

/** The label of a failed connection or dial, from its code, its OS code or its cause's. */
export function failureReason(e: unknown): FailureReason {
  const error = e as { code?: unknown; syscallCode?: unknown; cause?: { code?: unknown } } | undefined;
  const codes = [error?.syscallCode, error?.code, error?.cause?.code].filter((c): c is string => typeof c === 'string');
  for (const c of codes) if (Object.hasOwn(SYSTEM_REASON, c)) return SYSTEM_REASON[c]!;
  for (const c of codes) {
    if (c === ErrorCode.HANDSHAKE_TIMEOUT || c === ErrorCode.TIMEOUT) return 'timeout';
    if (HANDSHAKE_CODES.has(c)) return 'handshake';
  }
  return 'other';
}

/** The OS code of an error for logs (`ECONNREFUSED`), or its own code. */
function shortReason(e: unknown): string {
  const error = e as { code?: unknown; syscallCode?: unknown; cause?: { code?: unknown }; message?: string } | undefined;
  for (const c of [error?.syscallCode, error?.code, error?.cause?.code]) if (typeof c === 'string') return c;
  return error?.message ?? String(e);
}

/**
 * The forward side's metrics, registered beside TunnelMetrics'. Server side:
 * `forward_backend_failures_total{reason}` (connections to the `--to` service that failed) and
 * `forward_backend_up` (the probe's last answer, 1 or 0). Client side:
 * `forward_dial_failures_total{reason}` (tunnels to the forward server that could not be opened).
 * Every reason's series exists from the start, at 0.
 */
export class ForwardMetrics {
  private readonly failures: Counter<string>;
  private readonly backendUp: Gauge<string> | undefined;

  constructor(
    readonly side: 'server' | 'client',
    registry: Registry,
    prefix: string,
    private readonly labels: Record<string, string>,
  ) {
    const registers = [registry];
    const labelNames = [...Object.keys(labels), 'reason'];
    this.failures =
      side === 'server'
        ? new Counter({ name: `${prefix}forward_backend_failures_total`, help: 'Connections to the backend service (--to) that failed, by reason', labelNames, registers })
        : new Counter({ name: `${prefix}forward_dial_failures_total`, help: 'Tunnels to the forward server (--connect) that could not be opened, by reason', labelNames, registers });
    for (const reason of FAILURE_REASONS) {
      if (side === 'client' || reason !== 'handshake') this.failures.inc({ ...labels, reason }, 0);
    }
    if (side === 'server') {
      this.backendUp = new Gauge({
        name: `${prefix}forward_backend_up`,
        help: 'Whether the backend service (--to) answered the last probe (1) or not (0)',
        labelNames: Object.keys(labels),
        registers,
        aggregator: 'min', // over forward workers: up only when every worker reaches it
      });
      this.backendUp.set(labels, 0);
    }
  }

  /** Server side: a connection to the backend failed. */
  backendFailure(reason: FailureReason): void {
    if (this.side === 'server') this.failures.inc({ ...this.labels, reason });
  }

  /** Client side: a tunnel to the forward server could not be opened. */
  dialFailure(reason: FailureReason): void {
    if (this.side === 'client') this.failures.inc({ ...this.labels, reason });
  }

  /** Server side: the probe's answer. */
  setBackendUp(up: boolean): void {
    this.backendUp?.set(this.labels, up ? 1 : 0);
  }
}

export interface BackendProbeOptions {
  /** Longest time between two checks when no forwarded connection reached the backend. */
  intervalMs: number;
  /** Limit of each probe's TCP connect. */
  timeoutMs: number;
  /** Called with every change of state (after the first check, every change). */
  onChange?(up: boolean, reason: string | undefined): void;
}

/** Whether the backend accepts TCP connections, checked on a bounded interval and cached. */
export class BackendProbe {
  private up = false;
  private checked = false;
  private reason: string | undefined = 'not checked yet';
  private lastSeen = -Infinity;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly where: string;

  constructor(
    private readonly target: HostPort,
    private readonly options: BackendProbeOptions,
  ) {
    this.where = formatHostPort(target.host, target.port);
  }

  /** Checks once now, then keeps checking every `intervalMs`. Resolves after the first check. */
  async start(): Promise<void> {
    await this.probe();
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /** The last known state (false until the first check). */
  get reachable(): boolean {
    return this.up;
  }

  /** A forwarded connection reached the backend: as good as a probe. */
  reportSuccess(): void {
    this.lastSeen = performance.now();
    this.set(true, undefined);
  }

  /** A forwarded connection could not connect: down until a probe or a connection says otherwise. */
  reportFailure(error: unknown): void {
    this.set(false, shortReason(error));
  }

  /** The `backend` health check: pass when reachable, warn (degraded, and not ready) when not. */
  check(): CheckResult {
    return this.up
      ? { status: 'pass', detail: `${this.where} reachable` }
      : { status: 'warn', detail: `${this.where} unreachable${this.reason ? `: ${this.reason}` : ''}` };
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      // Skip the probe when real traffic proved the backend up within the interval.
      const fresh = this.up && performance.now() - this.lastSeen < this.options.intervalMs;
      void (fresh ? Promise.resolve() : this.probe()).then(() => this.schedule());
    }, this.options.intervalMs);
    this.timer.unref();
  }

  private probe(): Promise<void> {
    return new Promise((resolve) => {
      const socket = tcpConnect({ host: this.target.host, port: this.target.port });
      const done = (up: boolean, reason?: string) => {
        clearTimeout(timer);
        socket.destroy();
        if (!this.stopped) this.set(up, reason);
        resolve();
      };
      const timer = setTimeout(() => done(false, `no answer within ${this.options.timeoutMs} ms`), this.options.timeoutMs);
      socket.once('connect', () => {
        this.lastSeen = performance.now();
        done(true);
      });
      socket.once('error', (e) => done(false, shortReason(e)));
    });
  }

  private set(up: boolean, reason: string | undefined): void {
    const changed = !this.checked || up !== this.up;
    this.checked = true;
    this.up = up;
    this.reason = reason;
    if (changed) this.options.onChange?.(up, reason);
  }
}
