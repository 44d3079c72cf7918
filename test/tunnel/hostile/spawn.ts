/**
 * Runs test/tunnel/hostile/child.ts in its own Node process, asynchronously (the test's raw peers
 * live in this process's event loop, so runChild's spawnSync would block them), and reads the
 * JSON lines it prints.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const script = fileURLToPath(new URL('./child.ts', import.meta.url));

/** One line the child printed. */
export type ChildEvent = { event: string } & Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export class HostileChild {
  readonly events: ChildEvent[] = [];
  stderr = '';
  stdout = '';
  exitCode: number | null = null;
  signal: NodeJS.Signals | null = null;
  readonly exited: Promise<void>;
  private readonly proc: ChildProcess;
  private pending = '';
  private waiters: Array<() => void> = [];

  /** `nodeArgs` go before the script (V8 flags such as --max-old-space-size=64). */
  constructor(args: readonly string[], nodeArgs: readonly string[] = []) {
    this.proc = spawn(process.execPath, ['--import', 'tsx', ...nodeArgs, script, ...args], {
      cwd: root,
      env: process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.proc.stdout!.setEncoding('utf8');
    this.proc.stderr!.setEncoding('utf8');
    this.proc.stdout!.on('data', (chunk: string) => {
      this.stdout += chunk;
      this.pending += chunk;
      for (let i = this.pending.indexOf('\n'); i >= 0; i = this.pending.indexOf('\n')) {
        const line = this.pending.slice(0, i);
        this.pending = this.pending.slice(i + 1);
        try {
          const value = JSON.parse(line) as ChildEvent;
          if (value && typeof value.event === 'string') this.events.push(value);
        } catch {
          /* not one of our lines */
        }
      }
      this.wake();
    });
    this.proc.stderr!.on('data', (chunk: string) => (this.stderr += chunk));
    this.proc.stdin!.on('error', () => undefined);
    this.exited = new Promise((resolve) =>
      this.proc.once('exit', (code, signal) => {
        this.exitCode = code;
        this.signal = signal;
        this.wake();
        resolve();
      }),
    );
  }

  get alive(): boolean {
    return this.exitCode === null && this.signal === null;
  }

  /** A short description for assertion messages. */
  describe(): string {
    return `child exit=${this.exitCode} signal=${this.signal}\nstderr:\n${this.stderr.slice(-3000)}`;
  }

  /** Sends one command line on stdin. */
  command(line: string): void {
    this.proc.stdin!.write(`${line}\n`);
  }

  /** The first event (from index `from` on) matching `match`, within `ms`; throws if the child exits first. */
  async waitFor(match: (e: ChildEvent) => boolean, ms: number, what: string, from = 0): Promise<ChildEvent> {
    const deadline = Date.now() + ms;
    for (;;) {
      const found = this.events.slice(from).find(match);
      if (found) return found;
      if (!this.alive) throw new Error(`the child exited while waiting for ${what}: ${this.describe()}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${ms} ms waiting for ${what} from the child`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Ends stdin (a server child then exits) and kills it if it is still there after `ms`. */
  async stop(ms = 3000): Promise<void> {
    if (this.alive) {
      this.proc.stdin!.end();
      const timer = setTimeout(() => this.proc.kill('SIGKILL'), ms);
      await this.exited;
      clearTimeout(timer);
    }
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}
