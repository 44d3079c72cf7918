/**
 * Helpers of the CLI tests: quantum-vpn run as a user runs it (a child process of
 * bin/quantum-vpn.js, or of `node --import tsx lib/cli/main.ts`: see CLI_ARGS), with its output
 * collected, bounded waits for its lines, and every process killed in afterEach. Also a tiny HTTP
 * getter and free-port finder.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { request } from 'node:http';
import { mkdtempSync, readdirSync, statSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const MAIN = fileURLToPath(new URL('../../lib/cli/main.ts', import.meta.url));

/**
 * What a child runs to be quantum-vpn: the built CLI (bin/quantum-vpn.js over dist/cli.js, what a
 * user runs) when dist/ is newer than every lib/ source, as after `npm test`'s build, since a child
 * then starts in about a third of the time tsx takes to compile lib/; otherwise, or with
 * QUANTUM_TUNNEL_CLI_FROM_SOURCE=1 (the coverage run, which measures lib/), lib/cli/main.ts under tsx.
 */
export const CLI_ARGS: readonly string[] =
  process.env.QUANTUM_TUNNEL_CLI_FROM_SOURCE !== '1' && builtCliIsFresh() ? [join(ROOT, 'bin', 'quantum-vpn.js')] : ['--import', 'tsx', MAIN];

function builtCliIsFresh(): boolean {
  let built: number;
  try {
    built = statSync(join(ROOT, 'dist', 'cli.js')).mtimeMs;
  } catch {
    return false;
  }
  const newest = (dir: string): number =>
    Math.max(0, ...readdirSync(dir, { withFileTypes: true }).map((e) => (e.isDirectory() ? newest(join(dir, e.name)) : statSync(join(dir, e.name)).mtimeMs)));
  return built >= newest(join(ROOT, 'lib')) && built >= statSync(join(ROOT, 'package.json')).mtimeMs;
}

export interface CliOptions {
  env?: NodeJS.ProcessEnv;
  /** Text written to stdin, which is then closed. Without it stdin stays open (a pipe). */
  input?: string;
  /** Extra Node options before the program (`--import` of a test hook, for example). */
  nodeArgs?: string[];
}

const running = new Set<CliProcess>();

/** A running quantum-vpn process. */
export class CliProcess {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly waiters = new Set<() => void>();

  constructor(readonly args: string[], options: CliOptions = {}) {
    this.child = spawn(process.execPath, [...(options.nodeArgs ?? []), ...CLI_ARGS, ...args], {
      cwd: ROOT,
      env: { ...process.env, NO_COLOR: '1', ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    running.add(this);
    this.child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      this.stdout += d;
      this.wake();
    });
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      this.stderr += d;
      this.wake();
    });
    this.child.stdin!.on('error', () => undefined);
    this.exited = new Promise((resolve) => {
      this.child.once('close', (code, signal) => {
        running.delete(this);
        this.wake();
        resolve({ code, signal });
      });
    });
    if (options.input !== undefined) this.child.stdin!.end(options.input);
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  /** Waits until `stream` matches `re`; rejects (with the output so far) after `ms` or on exit. */
  async waitFor(re: RegExp, ms = 20_000, stream: 'stdout' | 'stderr' = 'stdout'): Promise<RegExpMatchArray> {
    const deadline = Date.now() + ms;
    let exited = false;
    void this.exited.then(() => (exited = true));
    for (;;) {
      const m = this[stream].match(re);
      if (m) return m;
      const left = deadline - Date.now();
      if (left <= 0 || exited) {
        throw new Error(`${exited ? 'process exited' : `timed out after ${ms} ms`} waiting for ${re} on ${stream}\n--- stdout:\n${this.stdout}\n--- stderr:\n${this.stderr}`);
      }
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.waiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, Math.min(left, 200));
        this.waiters.add(done);
      });
    }
  }

  /** The `listening on HOST:PORT` line's port. */
  async listeningPort(ms = 20_000): Promise<number> {
    const m = await this.waitFor(/listening on (?:\[[^\]]+\]|[^\s:]+):(\d+)/, ms);
    return Number(m[1]);
  }

  /** The observability server's port from the `observability on http://HOST:PORT` line. */
  async observabilityPort(ms = 20_000): Promise<number> {
    const m = await this.waitFor(/observability on http:\/\/[^\s]+:(\d+)/, ms);
    return Number(m[1]);
  }

  /** Waits for the exit, at most `ms`; returns the code. */
  async exit(ms = 20_000): Promise<number | null> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`process did not exit within ${ms} ms\n--- stdout:\n${this.stdout}\n--- stderr:\n${this.stderr}`)), ms);
    });
    try {
      return (await Promise.race([this.exited, timeout])).code;
    } finally {
      clearTimeout(timer);
    }
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
  }
}

/** Starts quantum-vpn with `args`. */
export function startCli(args: string[], options: CliOptions = {}): CliProcess {
  return new CliProcess(args, options);
}

/** Runs quantum-vpn to completion; `input` (if any) is piped to stdin and closed. */
export async function runCli(args: string[], options: CliOptions & { timeoutMs?: number } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = new CliProcess(args, { input: '', ...options });
  const code = await p.exit(options.timeoutMs ?? 60_000);
  return { code, stdout: p.stdout, stderr: p.stderr };
}

/** Kills every process still running (afterEach): SIGKILL, then waits for each to be gone. */
export async function killAll(): Promise<void> {
  const list = [...running];
  for (const p of list) p.kill('SIGKILL');
  await Promise.all(list.map((p) => p.exited));
}

/**
 * A new temporary directory holding one PSK file per identity (`a.psk`, `b.psk`...), each made by
 * `quantum-vpn psk generate` with its own random key. The caller removes the directory.
 */
export async function makePskFiles(identities: string[]): Promise<{ dir: string; files: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'qt-cli-psk-'));
  const files = identities.map((_, i) => join(dir, `${String.fromCharCode(97 + i)}.psk`));
  const made = await Promise.all(files.map((f, i) => runCli(['psk', 'generate', f, '--identity', identities[i]!])));
  for (const r of made) if (r.code !== 0) throw new Error(`psk generate failed: ${r.stderr}`);
  return { dir, files };
}

/** GET http://127.0.0.1:port/path → status, headers and body. */
export function httpGet(port: number, path: string): Promise<{ status: number; contentType: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'GET', agent: false, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type'] ?? ''), body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/** A TCP port that was free a moment ago (for programs that cannot listen on port 0). */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Value of a Prometheus sample (the first line starting with `name{` or `name `). */
export function metricValue(text: string, name: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

export function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
