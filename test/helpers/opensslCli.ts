/**
 * The OpenSSL 3.5+ command line of the cached OpenSSL the addon is built from
 * (scripts/provision-openssl.sh), for interoperability tests: undefined when there is none, and
 * the tests that need it skip. Nothing under test runs through it.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

function candidates(): string[] {
  const out: string[] = [];
  if (process.env.QUANTUM_TUNNEL_OPENSSL_DIR) out.push(join(process.env.QUANTUM_TUNNEL_OPENSSL_DIR, 'bin', 'openssl'));
  const cache = process.env.QUANTUM_TUNNEL_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'quantum-tunnel');
  if (existsSync(cache)) {
    for (const d of readdirSync(cache).filter((n) => /^openssl-3\.\d+\.\d+-r\d+$/.test(n)).sort().reverse()) {
      out.push(join(cache, d, 'bin', 'openssl'));
    }
  }
  return out;
}

function find(): string | undefined {
  for (const bin of candidates()) {
    if (!existsSync(bin)) continue;
    const r = spawnSync(bin, ['version'], { encoding: 'utf8' });
    const m = /^OpenSSL (\d+)\.(\d+)/.exec(r.stdout ?? '');
    if (r.status === 0 && m && (Number(m[1]) > 3 || (Number(m[1]) === 3 && Number(m[2]) >= 5))) return bin;
  }
  return undefined;
}

/** The openssl binary, or undefined. */
export const opensslCli: string | undefined = find();

/**
 * Runs the CLI with a minimal configuration file of its own (test/fixtures/pki/openssl-cli.cnf; some
 * commands insist on reading one), never the machine's. Returns status and output; never throws for a non-zero exit.
 */
export function openssl(args: string[], options: { cwd?: string; input?: string } = {}): { status: number | null; stdout: string; stderr: string } {
  if (opensslCli === undefined) throw new Error('no OpenSSL CLI');
  const r = spawnSync(opensslCli, args, {
    cwd: options.cwd,
    input: options.input,
    encoding: 'utf8',
    env: { ...process.env, OPENSSL_CONF: fileURLToPath(new URL('../fixtures/pki/openssl-cli.cnf', import.meta.url)) },
    timeout: 60_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
