/**
 * A pool of pre-opened tunnels to one server, for clients that make many short requests: a
 * request leases a tunnel whose post-quantum handshake is already done, instead of paying for
 * one. The pool keeps `minIdle` tunnels ready, retires idle and old ones, pings idle ones to
 * find dead peers, queues callers first come first served when `max` is reached, and backs off
 * while the server cannot be reached.
 */
import { EventEmitter } from 'node:events';
import { ErrorCode, qtError } from '../errors.js';
import { dial, type DialAddress } from '../tunnel/dial.js';
import type { DialOptions } from '../tunnel/options.js';
import type { Tunnel } from '../tunnel/tunnel.js';
import { resolvePoolOptions, type ResolvedPoolOptions, type TunnelPoolOptions } from './poolOptions.js';

export type { TunnelPoolOptions } from './poolOptions.js';

/** Dial options for every tunnel of a pool, or a function giving them for each dial (for keys resolved per dial). */
export type PoolDialOptions = DialOptions | (() => DialOptions | Promise<DialOptions>);

/** What {@link TunnelPool.stats} reports. */
export interface TunnelPoolStats {
  /** Tunnels the pool holds or is dialing: idle + leased + checking + pendingDials (at most `max`). */
  size: number;
  /** Open and ready. */
  idle: number;
  /** Handed out by acquire() and not yet released. */
  leased: number;
  /** Idle tunnels whose health-check ping is in flight. */
  checking: number;
  /** Dials in progress. */
  pendingDials: number;
  /** Callers of acquire() / take() waiting for a tunnel. */
  waiters: number;
  /** Tunnels dialed successfully since the pool was created. */
  created: number;
  /** Tunnels the pool closed or lost (idle or lease timeout, lifetime, failed check, closed by the peer, destroyed by the lessee). */
  destroyed: number;
  /** Tunnels handed over for good by take(). */
  taken: number;
  /** Dials that failed. */
  dialFailures: number;
  /** Health checks that failed (the tunnel was destroyed). */
  healthCheckFailures: number;
  /** Time callers waited in acquire() / take() until they got a tunnel (ms). */
  acquireWait: {
    /** Callers that got a tunnel. */
    count: number;
    /** Their waits added up (ms). */
    totalMs: number;
    /** The longest wait (ms). */
    maxMs: number;
  };
}

/** A tunnel on lease from a {@link TunnelPool}: use `tunnel`, then `release()` it or `destroy()` it. */
export interface PooledTunnel {
  /** The leased tunnel, open and ready for `send()` or stream use. */
  readonly tunnel: Tunnel;
  /**
   * Gives the tunnel back for reuse. It goes back to the idle tunnels only if it is still open,
   * has nothing unread on its readable side, and has no 'data' or 'readable' listener the lessee
   * added (remove yours first); otherwise, or past `maxLifetimeMs`, it is closed with close_notify.
   * A second call does nothing.
   */
  release(): void;
  /** Discards the tunnel (destroys it at once); the pool dials a replacement if it needs one. */
  destroy(): void;
}

/** Options of one acquire() or take(). */
export interface AcquireOptions {
  /** Stop waiting (rejects with ERR_QT_ABORTED). */
  signal?: AbortSignal;
}

/**
 * Events: `acquire` (waitMs: number) each time a caller gets a tunnel; `dialFailure` (error) each
 * time a dial fails. Never emits 'error': failures reach the callers of acquire() and take().
 */
export interface TunnelPool extends EventEmitter {
  /**
   * Leases a tunnel: an idle one at once, else one dialed for this caller (within `max`), else
   * the next one released, in the order callers arrived. Rejects with ERR_QT_POOL_TIMEOUT after
   * `acquireTimeoutMs`, ERR_QT_POOL_EXHAUSTED when `maxWaiters` callers already wait,
   * ERR_QT_POOL_CLOSED after close(), or the dial's own error (ERR_QT_CONNECTION_FAILED...) when
   * the server cannot be reached: while dials keep failing the pool backs off, and a caller that
   * would have to wait for the next attempt gets the last failure at once.
   */
  acquire(options?: AcquireOptions): Promise<PooledTunnel>;
  /**
   * Hands over a pre-opened tunnel for good (one per forwarded connection, say): the caller owns
   * it and closes it; the pool forgets it and dials in the background to get back to `minIdle`.
   * Waits and fails like acquire().
   */
  take(options?: AcquireOptions): Promise<Tunnel>;
  /** Counts and timings, for logs and metrics. */
  stats(): TunnelPoolStats;
  /**
   * Drains: refuses new callers, rejects waiting ones with ERR_QT_POOL_CLOSED, stops dialing,
   * closes idle tunnels with close_notify, waits up to `drainTimeoutMs` for leased ones to come
   * back and then closes them too. Resolves once every tunnel of the pool has closed and no
   * timer is left. Tunnels already taken are the caller's.
   */
  close(): Promise<void>;
  /** Whether close() was called. */
  readonly closed: boolean;
}

/**
 * Creates a pool of tunnels to `address`, each opened with `dial(address, dialOptions)`. It starts
 * dialing at once when `minIdle` is above 0. Callers `acquire()` a lease and `release()` it (or
 * `destroy()` it when the tunnel's state is unknown), or `take()` a pre-opened tunnel for good.
 * Options and their defaults: {@link TunnelPoolOptions}; docs/OPERATIONS.md, "Connection pool".
 *
 * Throws ERR_QT_INVALID_ARGUMENT for an invalid option. `acquire()` and `take()` reject with
 * ERR_QT_POOL_TIMEOUT, ERR_QT_POOL_EXHAUSTED, ERR_QT_POOL_CLOSED, ERR_QT_ABORTED or the dial's own
 * error.
 *
 * @example
 * ```ts
 * import { createTunnelPool } from 'quantum-tunnel';
 *
 * const pool = createTunnelPool('db.example.com:8443', { psk }, { max: 16, minIdle: 4 });
 * const lease = await pool.acquire();
 * try {
 *   await lease.tunnel.send(request);
 *   lease.release(); // back to the idle tunnels for the next caller
 * } catch (err) {
 *   lease.destroy(); // do not reuse a tunnel in an unknown state
 *   throw err;
 * }
 * await pool.close(); // at shutdown
 * ```
 */
export function createTunnelPool(address: DialAddress, dialOptions: PoolDialOptions = {}, poolOptions: TunnelPoolOptions = {}): TunnelPool {
  return new Pool(address, dialOptions, resolvePoolOptions(poolOptions));
}

type EntryState = 'idle' | 'leased' | 'checking';

interface Entry {
  readonly tunnel: Tunnel;
  readonly createdAt: number;
  state: EntryState;
  idleSince: number;
  lastCheck: number;
  timer: NodeJS.Timeout | undefined;
  /** Listener counts when leased: a lessee that leaves a reader behind cannot give the tunnel back. */
  readers: number;
  readonly onClose: () => void;
  readonly onIdleEnd: () => void;
}

interface Waiter {
  readonly take: boolean;
  readonly since: number;
  readonly resolve: (entry: Entry) => void;
  readonly reject: (err: Error) => void;
}

const ignore = (): void => undefined;

class Pool extends EventEmitter implements TunnelPool {
  readonly #address: DialAddress;
  readonly #dialOptions: PoolDialOptions;
  readonly #o: ResolvedPoolOptions;
  /** Every tunnel the pool owns (idle, leased or checking). */
  readonly #entries = new Set<Entry>();
  /** Idle tunnels, most recently used last. */
  readonly #idle: Entry[] = [];
  readonly #waiters: Waiter[] = [];
  /** Dials and graceful closes in flight: close() waits for them. */
  readonly #inFlight = new Set<Promise<unknown>>();
  readonly #abort = new AbortController();
  #pendingDials = 0;
  #failuresInRow = 0;
  #backoffUntil = 0;
  #lastDialError: Error | undefined;
  #backoffTimer: NodeJS.Timeout | undefined;
  #closed = false;
  #drained: (() => void) | undefined;
  readonly #counts = { created: 0, destroyed: 0, taken: 0, dialFailures: 0, healthCheckFailures: 0 };
  readonly #wait = { count: 0, totalMs: 0, maxMs: 0 };

  constructor(address: DialAddress, dialOptions: PoolDialOptions, options: ResolvedPoolOptions) {
    super();
    this.#address = address;
    this.#dialOptions = dialOptions;
    this.#o = options;
    this.#pump();
  }

  get closed(): boolean {
    return this.#closed;
  }

  acquire(options: AcquireOptions = {}): Promise<PooledTunnel> {
    return this.#request(false, options).then((entry) => this.#lease(entry));
  }

  take(options: AcquireOptions = {}): Promise<Tunnel> {
    return this.#request(true, options).then((entry) => entry.tunnel);
  }

  stats(): TunnelPoolStats {
    let leased = 0;
    let checking = 0;
    for (const e of this.#entries) {
      if (e.state === 'leased') leased++;
      else if (e.state === 'checking') checking++;
    }
    return {
      size: this.#entries.size + this.#pendingDials,
      idle: this.#idle.length,
      leased,
      checking,
      pendingDials: this.#pendingDials,
      waiters: this.#waiters.length,
      ...this.#counts,
      acquireWait: { ...this.#wait },
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return this.#settled();
    this.#closed = true;
    clearTimeout(this.#backoffTimer);
    this.#abort.abort();
    for (const w of this.#waiters.splice(0)) w.reject(qtError(ErrorCode.POOL_CLOSED, 'the tunnel pool is closed'));
    for (const e of [...this.#entries]) if (e.state !== 'leased') this.#retire(e);
    if (this.#entries.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        this.#drained = resolve;
        timer = setTimeout(resolve, this.#o.drainTimeoutMs);
      });
      clearTimeout(timer);
      this.#drained = undefined;
      for (const e of [...this.#entries]) this.#retire(e);
    }
    return this.#settled();
  }

  /** Resolves once every dial and graceful close the pool started has finished. */
  async #settled(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
  }

  // ---- waiting --------------------------------------------------------------------------------

  #request(take: boolean, { signal }: AcquireOptions): Promise<Entry> {
    if (this.#closed) return Promise.reject(qtError(ErrorCode.POOL_CLOSED, 'the tunnel pool is closed'));
    if (signal?.aborted) return Promise.reject(qtError(ErrorCode.ABORTED, 'acquire aborted'));
    const since = performance.now();
    const idle = this.#idle.pop();
    if (idle) return Promise.resolve(this.#handOut(idle, take, since));
    // The server is failing and nothing else could serve this caller before the next attempt.
    if (this.#backingOff() && this.#pendingDials === 0 && this.#size() < this.#o.max) return Promise.reject(this.#lastDialError!);
    if (this.#waiters.length >= this.#o.maxWaiters) {
      return Promise.reject(qtError(ErrorCode.POOL_EXHAUSTED, `${this.#o.maxWaiters} callers already wait for a tunnel`));
    }
    return new Promise<Entry>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      const waiter: Waiter = {
        take,
        since,
        resolve: (entry) => {
          done();
          resolve(this.#handOut(entry, take, since));
        },
        reject: (err) => {
          done();
          reject(err);
        },
      };
      const leave = (err: Error) => {
        const i = this.#waiters.indexOf(waiter);
        if (i >= 0) this.#waiters.splice(i, 1);
        waiter.reject(err);
      };
      const onAbort = () => leave(qtError(ErrorCode.ABORTED, 'acquire aborted'));
      if (this.#o.acquireTimeoutMs > 0) {
        timer = setTimeout(() => leave(qtError(ErrorCode.POOL_TIMEOUT, `no tunnel within ${this.#o.acquireTimeoutMs} ms`)), this.#o.acquireTimeoutMs);
      }
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiters.push(waiter);
      this.#pump();
    });
  }

  /** Gives `entry` to a caller: a lease, or (take) the tunnel itself, which then leaves the pool. */
  #handOut(entry: Entry, take: boolean, since: number): Entry {
    this.#stopTimer(entry);
    entry.tunnel.off('end', entry.onIdleEnd);
    entry.tunnel.off('error', ignore);
    const waitMs = performance.now() - since;
    this.#wait.count++;
    this.#wait.totalMs += waitMs;
    this.#wait.maxMs = Math.max(this.#wait.maxMs, waitMs);
    this.emit('acquire', waitMs);
    if (take) {
      this.#forget(entry);
      this.#counts.taken++;
      // Back to minIdle, once the caller has its tunnel: a dial's synchronous start need not delay it.
      setImmediate(() => this.#pump());
    } else {
      entry.state = 'leased';
      entry.readers = readers(entry.tunnel);
    }
    return entry;
  }

  #lease(entry: Entry): PooledTunnel {
    let done = false;
    return {
      tunnel: entry.tunnel,
      release: () => {
        if (done) return;
        done = true;
        this.#release(entry);
      },
      destroy: () => {
        if (done) return;
        done = true;
        entry.tunnel.destroy();
      },
    };
  }

  #release(entry: Entry): void {
    if (!this.#entries.has(entry)) return; // closed while leased: already counted
    const t = entry.tunnel;
    const reusable = !this.#closed && !this.#expired(entry, Date.now()) && !t.destroyed && !t.readableEnded && !t.writableEnded && t.readableLength === 0 && readers(t) === entry.readers;
    if (!reusable) return this.#retire(entry);
    this.#makeIdle(entry, Date.now());
    this.#pump();
  }

  // ---- keeping the pool full ------------------------------------------------------------------

  #size(): number {
    return this.#entries.size + this.#pendingDials;
  }

  #backingOff(): boolean {
    return this.#lastDialError !== undefined && Date.now() < this.#backoffUntil;
  }

  /** Serves waiters from idle tunnels, then dials for the waiters left and for minIdle. */
  #pump(): void {
    if (this.#closed) return;
    while (this.#waiters.length > 0 && this.#idle.length > 0) this.#waiters.shift()!.resolve(this.#idle.pop()!);
    let checking = 0;
    for (const e of this.#entries) if (e.state === 'checking') checking++;
    const wanted = this.#waiters.length + Math.max(0, this.#o.minIdle - this.#idle.length - checking) - this.#pendingDials;
    const dials = Math.min(wanted, this.#o.max - this.#size());
    if (dials <= 0) return;
    if (this.#backingOff()) {
      // One timer, for the first moment a dial is allowed again.
      this.#backoffTimer ??= setTimeout(() => {
        this.#backoffTimer = undefined;
        this.#pump();
      }, this.#backoffUntil - Date.now()).unref();
      return;
    }
    // After a failure, one dial at a time tries the water; the others follow once one succeeds.
    const probing = this.#failuresInRow > 0;
    if (probing && this.#pendingDials > 0) return;
    for (let i = 0; i < (probing ? 1 : dials); i++) this.#dial();
  }

  #dial(): void {
    this.#pendingDials++;
    const attempt = (async () => {
      const options = typeof this.#dialOptions === 'function' ? await this.#dialOptions() : this.#dialOptions;
      const signal = options.signal ? AbortSignal.any([options.signal, this.#abort.signal]) : this.#abort.signal;
      return dial(this.#address, { ...options, signal });
    })();
    const settled = attempt.then(
      (tunnel) => {
        this.#pendingDials--;
        this.#failuresInRow = 0;
        this.#lastDialError = undefined;
        this.#counts.created++;
        this.#adopt(tunnel);
      },
      (err: unknown) => {
        this.#pendingDials--;
        if (this.#closed) return;
        this.#dialFailed(err instanceof Error ? err : new Error(String(err)));
      },
    );
    this.#track(settled);
  }

  #dialFailed(err: Error): void {
    this.#counts.dialFailures++;
    this.#failuresInRow++;
    this.#lastDialError = err;
    const delay = Math.min(this.#o.dialBackoffMaxMs, this.#o.dialBackoffMs * 2 ** Math.min(this.#failuresInRow - 1, 30));
    this.#backoffUntil = Date.now() + delay * (0.5 + Math.random() / 2); // jitter: clients that failed together do not retry together
    this.emit('dialFailure', err);
    // The callers waiting would otherwise sit out the backoff: tell them now, unless a dial is still on its way.
    if (this.#pendingDials === 0) for (const w of this.#waiters.splice(0)) w.reject(err);
    this.#pump();
  }

  /** A new tunnel: to the first waiter, else idle. */
  #adopt(tunnel: Tunnel): void {
    if (this.#closed) {
      tunnel.on('error', ignore);
      this.#track(tunnel.close());
      return;
    }
    const now = Date.now();
    const entry: Entry = {
      tunnel,
      createdAt: now,
      state: 'idle',
      idleSince: now,
      lastCheck: now,
      timer: undefined,
      readers: 0,
      onClose: () => this.#lost(entry),
      onIdleEnd: () => tunnel.destroy(), // the peer closed an idle tunnel: it cannot serve anyone
    };
    this.#entries.add(entry);
    tunnel.once('close', entry.onClose);
    const waiter = this.#waiters.shift();
    if (waiter) waiter.resolve(entry);
    else this.#makeIdle(entry, now);
    this.#pump();
  }

  #makeIdle(entry: Entry, idleSince: number): void {
    entry.state = 'idle';
    entry.idleSince = idleSince;
    entry.tunnel.on('error', ignore); // an idle tunnel's failure only removes it ('close' follows)
    entry.tunnel.once('end', entry.onIdleEnd);
    this.#idle.push(entry);
    this.#schedule(entry);
  }

  // ---- ageing and health checks ---------------------------------------------------------------

  #expired(entry: Entry, now: number): boolean {
    return this.#o.maxLifetimeMs > 0 && now - entry.createdAt >= this.#o.maxLifetimeMs;
  }

  /** One timer per idle tunnel, for the first of: its lifetime, its idle timeout, its next check. */
  #schedule(entry: Entry, keptForMinIdle = false): void {
    this.#stopTimer(entry);
    const o = this.#o;
    const due: [number, number, number] = [
      o.maxLifetimeMs > 0 ? entry.createdAt + o.maxLifetimeMs : Infinity,
      o.idleTimeoutMs > 0 && !keptForMinIdle ? entry.idleSince + o.idleTimeoutMs : Infinity,
      o.healthCheckIntervalMs > 0 ? Math.max(entry.idleSince, entry.lastCheck) + o.healthCheckIntervalMs : Infinity,
    ];
    const next = Math.min(...due);
    if (next === Infinity) return;
    entry.timer = setTimeout(() => this.#onIdleTimer(entry, due), Math.max(0, next - Date.now())).unref();
  }

  #onIdleTimer(entry: Entry, [lifetimeDue, idleDue, checkDue]: [number, number, number]): void {
    entry.timer = undefined;
    const now = Date.now();
    if (now >= lifetimeDue) return this.#retire(entry);
    if (now >= idleDue && this.#idle.length > this.#o.minIdle) return this.#retire(entry);
    if (now >= checkDue) return this.#check(entry);
    // Idle past its timeout but needed for minIdle: only the lifetime and the checks apply. (A
    // timer can fire a few ms before Date.now() reaches its due time: then it is simply re-armed.)
    this.#schedule(entry, now >= idleDue);
  }

  /** Pings an idle tunnel; one that does not answer in time is destroyed (the pool dials a replacement). */
  #check(entry: Entry): void {
    this.#removeIdle(entry);
    entry.state = 'checking';
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(qtError(ErrorCode.TIMEOUT, 'health check timed out')), this.#o.healthCheckTimeoutMs);
    });
    const check = Promise.race([entry.tunnel.ping(), timeout]).then(
      () => {
        clearTimeout(timer);
        if (!this.#entries.has(entry)) return;
        entry.lastCheck = Date.now();
        entry.tunnel.off('end', entry.onIdleEnd);
        entry.tunnel.off('error', ignore);
        if (this.#closed) return this.#retire(entry);
        this.#makeIdle(entry, entry.idleSince); // a check is no use: the idle time runs on
        this.#pump();
      },
      () => {
        clearTimeout(timer);
        if (!this.#entries.has(entry)) return;
        this.#counts.healthCheckFailures++;
        entry.tunnel.destroy(); // 'close' removes it
      },
    );
    this.#track(check);
  }

  // ---- leaving the pool -----------------------------------------------------------------------

  /** Closes a tunnel the pool no longer wants, with close_notify. */
  #retire(entry: Entry): void {
    this.#forget(entry);
    this.#counts.destroyed++;
    entry.tunnel.on('error', ignore);
    this.#track(entry.tunnel.close());
    this.#pump();
  }

  /** A tunnel closed by itself (the peer, a failure, a failed check, the lessee's destroy()). */
  #lost(entry: Entry): void {
    if (!this.#entries.has(entry)) return;
    this.#forget(entry);
    this.#counts.destroyed++;
    this.#pump();
  }

  #forget(entry: Entry): void {
    this.#stopTimer(entry);
    this.#removeIdle(entry);
    this.#entries.delete(entry);
    entry.tunnel.off('close', entry.onClose);
    entry.tunnel.off('end', entry.onIdleEnd);
    if (this.#entries.size === 0) this.#drained?.();
  }

  #removeIdle(entry: Entry): void {
    const i = this.#idle.indexOf(entry);
    if (i >= 0) this.#idle.splice(i, 1);
  }

  #stopTimer(entry: Entry): void {
    clearTimeout(entry.timer);
    entry.timer = undefined;
  }

  #track(p: Promise<unknown>): void {
    const tracked = p.catch(ignore).finally(() => this.#inFlight.delete(tracked));
    this.#inFlight.add(tracked);
  }
}

/** Listeners that consume the readable side: a lessee must take its own away before release(). */
function readers(t: Tunnel): number {
  return t.listenerCount('data') + t.listenerCount('readable');
}

