/**
 * Received messages, boundaries intact, until the application shows how it reads: the stream
 * side drains them, or `messages()` takes them one by one (then waiting readers are served
 * first). Flow control (pausing the socket) stays with the tunnel. A record that spanned socket
 * reads arrives as its pieces: the stream side takes them as they are, a message is joined.
 */

/** One received message: a buffer, or the pieces of one record that spanned socket reads. */
export type Received = Buffer | Buffer[];

function whole(data: Received): Buffer {
  return Array.isArray(data) ? Buffer.concat(data) : data;
}

interface Waiter {
  resolve: (value: IteratorResult<Buffer>) => void;
  reject: (err: Error) => void;
}

export class MessageInbox {
  readonly #queue: Received[] = [];
  #waiters: Waiter[] = [];
  /** messages() was called: records go to it, not to the readable side. */
  messageMode = false;

  get length(): number {
    return this.#queue.length;
  }

  /** A received message: to a waiting messages() reader, else queued. */
  deliver(data: Received): void {
    const waiter = this.messageMode ? this.#waiters.shift() : undefined;
    if (waiter) waiter.resolve({ value: whole(data), done: false });
    else this.#queue.push(data);
  }

  /** The next message, whole. */
  take(): Buffer | undefined {
    const data = this.#queue.shift();
    return data === undefined ? undefined : whole(data);
  }

  /** The next message as received (the stream side needs no joined copy). */
  takePieces(): Received | undefined {
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
