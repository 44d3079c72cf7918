/**
 * The tunnel's two liveness timers, named once:
 * - keepalive: a peer silent for `keepAliveMs` gets an authenticated Ping; if it is still silent
 *   `keepAliveMs` later, it is gone (a dead host, a dropped NAT mapping, a hung process) and the
 *   tunnel fails. Any frame from the peer counts as a sign of life, so a busy tunnel sends none.
 * - idle timeout: no application data either way for `idleTimeoutMs` closes the tunnel
 *   gracefully (close_notify). Pings and other control messages do not count as data.
 *
 * Each is one unref'd interval that compares counters, so the data path pays an increment per
 * frame and no timer reset per record. Detection is therefore within one interval: keepalive
 * fails between 2x and 3x `keepAliveMs` of silence, the idle close comes between 1x and 1.5x
 * `idleTimeoutMs` of inactivity.
 */

/** What the timers read and do; the tunnel supplies them. */
export interface LivenessHooks {
  /** Frames received so far (any type). */
  framesReceived(): number;
  /** Application bytes sent plus received so far. */
  dataBytes(): number;
  /** Sends a Ping (its Pong arrives as a frame). */
  ping(): void;
  /** The peer did not answer: fail the tunnel. */
  unresponsive(): void;
  /** No data for the idle timeout: close the tunnel gracefully. */
  idle(): void;
}

export interface LivenessOptions {
  /** 0 = no keepalive. */
  keepAliveMs: number;
  /** 0 = no idle timeout. */
  idleTimeoutMs: number;
}

export class Liveness {
  #keepAlive: NodeJS.Timeout | undefined;
  #idle: NodeJS.Timeout | undefined;
  #framesSeen: number;
  #probing = false;
  #bytesSeen: number;
  #quietTicks = 0;
  /** Set by stop(): a tick already due does nothing (and some timer mocks keep calling). */
  #stopped = false;

  constructor(private readonly hooks: LivenessHooks, options: LivenessOptions) {
    this.#framesSeen = hooks.framesReceived();
    this.#bytesSeen = hooks.dataBytes();
    if (options.keepAliveMs > 0) {
      this.#keepAlive = setInterval(() => this.#keepAliveTick(), options.keepAliveMs);
      this.#keepAlive.unref();
    }
    if (options.idleTimeoutMs > 0) {
      // Ticks at half the timeout: two quiet ticks in a row are at least one full timeout.
      this.#idle = setInterval(() => this.#idleTick(), Math.max(1, Math.floor(options.idleTimeoutMs / 2)));
      this.#idle.unref();
    }
  }

  #keepAliveTick(): void {
    if (this.#stopped) return;
    const frames = this.hooks.framesReceived();
    if (frames !== this.#framesSeen) {
      this.#framesSeen = frames;
      this.#probing = false;
      return;
    }
    if (this.#probing) {
      this.stop();
      this.hooks.unresponsive();
      return;
    }
    this.#probing = true;
    this.hooks.ping();
  }

  #idleTick(): void {
    if (this.#stopped) return;
    const bytes = this.hooks.dataBytes();
    if (bytes !== this.#bytesSeen) {
      this.#bytesSeen = bytes;
      this.#quietTicks = 0;
      return;
    }
    if (++this.#quietTicks >= 2) {
      this.stop();
      this.hooks.idle();
    }
  }

  /** Stops both timers (the tunnel is closing). */
  stop(): void {
    this.#stopped = true;
    clearInterval(this.#keepAlive);
    clearInterval(this.#idle);
    this.#keepAlive = this.#idle = undefined;
  }
}
