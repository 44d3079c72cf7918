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
});
