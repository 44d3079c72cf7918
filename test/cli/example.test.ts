/**
 * `quantum-vpn example`: the printed examples are exactly lib/cli/examples.ts, and every one of
 * them typechecks (strict) and runs against this checkout with the output it promises.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { EXAMPLES } from '../../lib/cli/examples.js';
import { killAll, ROOT, runCli } from './helpers.js';

/** The example with `from 'quantum-tunnel'` pointed at this checkout's sources. */
function localised(code: string): string {
  return code.replaceAll("from 'quantum-tunnel'", `from '${join(ROOT, 'lib', 'index.js')}'`);
}

function runFile(file: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', file], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('cli: example', function () {
  this.timeout(120_000);
  let dir: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'quantum-vpn-examples-'));
    for (const e of EXAMPLES) writeFileSync(join(dir, `${e.name}.mts`), localised(e.code));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
  afterEach(killAll);

  it('prints every example, exactly as tested here', async () => {
    const r = await runCli(['example']);
    expect(r.code).to.equal(0);
    for (const [i, e] of EXAMPLES.entries()) {
      expect(r.stdout).to.include(`// ==== ${i + 1}. ${e.name}: ${e.title}`);
      expect(r.stdout).to.include(e.code.trimEnd());
    }
  });

  it('every example typechecks under strict TypeScript', () => {
    const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    const args = ['--noEmit', '--strict', '--noUncheckedIndexedAccess', '--target', 'es2022', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--skipLibCheck'];
    args.push('--types', 'node', '--typeRoots', join(ROOT, 'node_modules', '@types'));
    const r = spawnSync(process.execPath, [tsc, ...args, ...EXAMPLES.map((e) => join(dir, `${e.name}.mts`))], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
    expect(r.status, `${r.stdout}${r.stderr}`).to.equal(0);
  });

  for (const e of EXAMPLES) {
    it(`runs "${e.name}" (${e.title})`, async () => {
      const r = await runFile(join(dir, `${e.name}.mts`));
      expect(r.code, `${r.stdout}\n${r.stderr}`).to.equal(0);
      expect(r.stderr).to.equal('');
      for (const line of e.expect) expect(r.stdout).to.include(line);
    });
  }
});
