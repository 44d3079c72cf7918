/**
 * The rekeys of one tunnel over time: the application's rekey() calls (several share one
 * exchange), the automatic triggers (checked off the write path) and the response deadline.
 * The protocol itself (messages, keys, switch points) is the session's.
 */
import { ErrorCode, type QuantumTunnelError, qtError } from '../errors.js';
import type { Session } from '../protocol/session.js';
import type { ObserverSet } from './observer.js';

/** How often the time-based rekey trigger is checked. */
const REKEY_CHECK_INTERVAL_MS = 60_000;
/** A rekey that gets no response within this time fails the tunnel (its writes are held back). */
const REKEY_TIMEOUT_MS = 30_000;

/** What the controller needs from its tunnel. */
export interface RekeyHost {
  readonly session: Session;
  readonly observers: ObserverSet;
  /** Whether the tunnel can still send. */
  open(): boolean;
  write(bytes: Buffer): void;
  /** Ends the tunnel with a fatal alert. */
  fail(err: unknown): void;
}

/**
 * The tunnels with the automatic trigger on, checked by one interval for the whole process rather
 * than a timer per tunnel (one less timer to create and clear per connection).
 */
const checked = new Set<RekeyController>();
let checkTimer: NodeJS.Timeout | undefined;

/** @internal The interval's check, run on every tunnel now (tests call it instead of waiting a minute). */
export function checkAutomaticRekeys(): void {
  for (const c of checked) c.maybeRekey();
}

export class RekeyController {
  #waiters: Array<{ resolve: () => void; reject: (err: Error) => void }> = [];
  #timer: NodeJS.Timeout | undefined;
  #watch: { succeeded(): void; failed(code: string): void } | undefined;

  constructor(private readonly host: RekeyHost, readonly automatic: boolean) {
    if (automatic) {
      checked.add(this);
      if (checkTimer === undefined) {
        checkTimer = setInterval(checkAutomaticRekeys, REKEY_CHECK_INTERVAL_MS);
        checkTimer.unref();
      }
    }
  }

  /** Starts a rekey (or joins the one in progress); resolves when the new keys are agreed. */
  request(mode?: 'symmetric' | 'kem'): Promise<void> {
    const done = new Promise<void>((resolve, reject) => this.#waiters.push({ resolve, reject }));
    if (this.host.session.rekeyInProgress) return done;
    try {
      this.host.write(this.host.session.startRekey(mode));
      this.#watch = this.host.observers.startRekey(true);
    } catch (err) {
      this.host.fail(err);
      return done;
    }
    // An unanswered rekey ends the tunnel with an alert, so the peer sees a failure, not a clean end.
    this.#timer = setTimeout(() => this.host.fail(qtError(ErrorCode.REKEY_FAILED, 'no rekey response')), REKEY_TIMEOUT_MS);
    this.#timer.unref();
    return done;
  }

  #checkQueued = false;

  /** After a write: the triggers are checked once per turn of the event loop, however many writes it had. */
  afterWrite(): void {
    if (!this.automatic || this.#checkQueued) return;
    this.#checkQueued = true;
    setImmediate(() => {
      this.#checkQueued = false;
      this.maybeRekey();
    });
  }

  /** The automatic trigger (after writes and on the interval). */
  maybeRekey(): void {
    if (this.automatic && this.host.open() && this.host.session.needsRekey()) this.request().catch(() => undefined);
  }

  /** Our rekey's response arrived: the new keys are agreed. */
  completed(): void {
    clearTimeout(this.#timer);
    this.#watch?.succeeded();
    this.#watch = undefined;
    for (const w of this.#waiters.splice(0)) w.resolve();
  }

  /**
   * We answered the peer's rekey. If we had asked for one at the same moment, the session dropped
   * ours (v2: the client's request wins): the keys are new all the same, so our callers are done.
   */
  answered(): void {
    this.host.observers.startRekey(false).succeeded();
    if (this.#waiters.length > 0 && !this.host.session.rekeyInProgress) this.completed();
  }

  /** The tunnel ended: pending rekey() calls reject with `reason()` (only called when one is pending). */
  destroy(reason: () => Error): void {
    if (checked.delete(this) && checked.size === 0) {
      clearInterval(checkTimer);
      checkTimer = undefined;
    }
    clearTimeout(this.#timer);
    for (const w of this.#waiters.splice(0)) w.reject(reason());
    this.#watch?.failed((reason() as QuantumTunnelError).code ?? ErrorCode.TUNNEL_CLOSED);
    this.#watch = undefined;
  }
}
