import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { defineConfig, type Options } from 'tsup';

const common: Options = {
  // Maps for stack traces (node --enable-source-maps) that name lib/*.ts lines without carrying a
  // second copy of the sources in the package.
  sourcemap: true,
  esbuildOptions(options) {
    options.sourcesContent = false;
  },
  target: 'node20',
  platform: 'node',
  shims: true,
};

const LIBRARY_ENTRIES = ['index', 'testing'];

/**
 * The ESM entries (dist/index.js, dist/testing.js) re-export the CommonJS build instead of being a
 * second bundle: a process where the application imports the package and a dependency requires
 * it then holds one copy of every class, so an IdentityKey, a TicketIssuer or an error made
 * through one is accepted by the other (the dual-package hazard). The names come from esbuild's
 * annotation for Node's CommonJS export detection; test/package.test.ts checks they are all there.
 */
function writeEsmEntries(): void {
  for (const entry of LIBRARY_ENTRIES) {
    const cjs = readFileSync(`dist/${entry}.cjs`, 'utf8');
    const annotation = /0 && \(module\.exports = \{([^}]*)\}\);/.exec(cjs)?.[1] ?? '';
    const names = annotation.split(',').map((n) => n.trim()).filter(Boolean);
    if (names.length === 0) throw new Error(`dist/${entry}.cjs exports nothing that tsup.config.ts can see`);
    const header = `// ESM entry of quantum-tunnel: the CommonJS build re-exported (one copy per process; see tsup.config.ts).\n`;
    writeFileSync(`dist/${entry}.js`, `${header}import cjs from './${entry}.cjs';\nexport const {\n  ${names.join(',\n  ')},\n} = cjs;\nexport default cjs;\n`);
  }
}

/**
 * Type declarations, one set for both formats, emitted by tsc from lib/ (tsconfig.types.json)
 * rather than rolled up: the roll-up turned the type-only members of `crypto` (Secret, PrivateKey,
 * MlKemKeyPair...) into values that no consumer could name. dist/types is marked CommonJS, as the
 * code it describes now is, so `require` and `import` consumers resolve the same declarations.
 */
function writeDeclarations(): void {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', 'tsconfig.types.json'], { stdio: 'inherit' });
  mkdirSync('dist/types', { recursive: true });
  writeFileSync('dist/types/package.json', '{ "type": "commonjs" }\n');
}

export default defineConfig([
  {
    ...common,
    // The library, as CommonJS. Each entry is its own bundle: esbuild's CommonJS code splitting
    // is experimental and its maps point at absolute build paths. The test-only entry therefore
    // has its own copies of the classes, which the native handles and the error mark tolerate.
    entry: { index: 'lib/index.ts', testing: 'lib/testing.ts' },
    format: ['cjs'],
    splitting: false,
    // The two builds run side by side: this one empties dist/ but for the CLI's files, which the
    // other writes (and never cleans, so neither deletes the other's output).
    clean: ['!cli.js', '!cli.js.map'],
    onSuccess: async () => {
      writeEsmEntries();
      writeDeclarations();
    },
  },
  {
    ...common,
    // The CLI, an application with its own copy of the library, as ESM (bin/quantum-vpn.js).
    entry: { cli: 'lib/cli/main.ts' },
    format: ['esm'],
    splitting: false,
    clean: false,
    // CommonJS dependencies bundled into it (yaml) require Node's built-ins: give it a real require().
    banner: { js: "import { createRequire as __qtCreateRequire } from 'node:module'; const require = __qtCreateRequire(import.meta.url);" },
  },
]);
