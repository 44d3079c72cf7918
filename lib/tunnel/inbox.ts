/**
 * Received messages, boundaries intact, until the application shows how it reads: the stream
 * side drains them, or `messages()` takes them one by one (then waiting readers are served
 * first). Flow control (pausing the socket) stays with the tunnel.
 */

interface Waiter {
  resolve: (value: IteratorResult<Buffer>) => void;
  reject: (err: Error) => void;
}

export class MessageInbox {
  readonly #queue: Buffer[] = [];
  #waiters: Waiter[] = [];
  /** messages() was called: records go to it, not to the readable side. */
  messageMode = false;

  get length(): number {
    return this.#queue.length;
  }

  /** A received message: to a waiting messages() reader, else queued. */
  deliver(data: Buffer): void {
    const waiter = this.messageMode ? this.#waiters.shift() : undefined;
    if (waiter) waiter.resolve({ value: data, done: false });
    else this.#queue.push(data);
  }

  take(): Buffer | undefined {
    return this.#queue.shift();
  }

  /** A messages() reader waiting for the next message. */
  wait(): Promise<IteratorResult<Buffer>> {
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  /** Waiting readers see the end. */
  end(): void {
    for (const w of this.#waiters.splice(0)) w.resolve({ value: undefined, done: true });
  }

  /** Waiting readers see the failure. */
  fail(err: Error): void {
    for (const w of this.#waiters.splice(0)) w.reject(err);
  }
}
