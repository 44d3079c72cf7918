import { defineConfig } from 'tsup';

export default defineConfig({
  entry: { index: 'lib/index.ts', cli: 'lib/cli/main.ts', testing: 'lib/testing.ts' },
  format: ['esm', 'cjs'],
  dts: true,
  // Maps for stack traces (node --enable-source-maps) that name lib/*.ts lines without carrying a
  // second copy of the sources in the package.
  sourcemap: true,
  esbuildOptions(options) {
    options.sourcesContent = false;
  },
  clean: true,
  target: 'node20',
  platform: 'node',
  shims: true,
  splitting: false,
  // CommonJS dependencies bundled into the ESM build (yaml, in dist/cli.js) require Node's
  // built-ins: give that build a real require().
  banner: ({ format }) => (format === 'esm' ? { js: "import { createRequire as __qtCreateRequire } from 'node:module'; const require = __qtCreateRequire(import.meta.url);" } : {}),
});
