/** Runs a TypeScript snippet in a fresh Node process (FIPS mode and its error state are process-wide). */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

export interface ChildResult {
  status: number | null;
  stdout: string;
  stderr: string;
  /** The JSON the script printed on its last line, if any. */
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/**
 * `body` runs inside an async function with `qt` bound to the package (lib/index.ts); it should
 * `return` a JSON-serialisable value.
 */
export function runChild(body: string, env: NodeJS.ProcessEnv = {}): ChildResult {
  const script = `
    const run = async () => { const qt = await import(${JSON.stringify(new URL('../../lib/index.ts', import.meta.url).href)}); ${body} };
    run().then((v) => { console.log(JSON.stringify({ ok: true, value: v ?? null })); process.exit(0); },
      (e) => { console.log(JSON.stringify({ ok: false, code: e?.code ?? null, message: String(e?.message ?? e) })); process.exit(0); });`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 60_000,
  });
  const last = r.stdout.trim().split('\n').pop() ?? '';
  let json: unknown = null;
  try {
    json = JSON.parse(last);
  } catch {
    /* not JSON: the caller looks at status and stderr */
  }
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, json };
}
