import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

describe('README', () => {
  it('starts with the two commands: set-up + demo, and the tests', () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const firstBlock = /```sh\n([\s\S]*?)```/.exec(readme)![1]!;
    expect(firstBlock).to.include('npm install && npm run demo');
    expect(firstBlock).to.include('npm test');
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
    expect(pkg.scripts.demo).to.be.a('string');
    expect(pkg.scripts.test).to.be.a('string');
  });

  it('its library example runs as written and prints the echo', () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const example = /```ts\n([\s\S]*?)```/.exec(readme)![1]!;
    const dir = mkdtempSync(join(tmpdir(), 'qt-readme-'));
    try {
      const file = join(dir, 'example.mts');
      writeFileSync(file, example.replace("from 'quantum-tunnel'", `from ${JSON.stringify(join(root, 'lib/index.ts'))}`));
      const out = execFileSync(process.execPath, ['--import', 'tsx', file], { cwd: root, encoding: 'utf8', timeout: 30_000 });
      expect(out.trim()).to.equal('hello over X25519 + ML-KEM-1024 AES-256-GCM');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
