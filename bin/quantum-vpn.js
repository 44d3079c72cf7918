#!/usr/bin/env node
// quantum-vpn launcher: runs the bundled CLI (dist/cli.js, built by `npm run build:ts`).
import('../dist/cli.js').then(
  (cli) => cli.main(),
  (err) => {
    process.stderr.write(`quantum-vpn: cannot load dist/cli.js (${err.code ?? err.message}); build it with: npm run build\n`);
    process.exitCode = 1;
  },
);
