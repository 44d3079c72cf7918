#!/usr/bin/env node
// `npm run demo`: the quantum-vpn echo demo on its defaults, end to end. Starts a server
// (localhost:8443, metrics on 127.0.0.1:9090), sends one message from a client with --verbose,
// scrapes the server's /metrics, then stops the server with SIGTERM (graceful: close_notify).
'use strict';
const { spawn, spawnSync } = require('node:child_process');
const { existsSync } = require('node:fs');
const http = require('node:http');
const { join } = require('node:path');

const root = join(__dirname, '..');
const cli = join(root, 'bin', 'quantum-vpn.js');

function buildIfNeeded() {
  if (existsSync(join(root, 'dist', 'cli.js'))) return;
  console.log('[demo] building the TypeScript bundle first (npm run build:ts)');
  const r = spawnSync('npm', ['run', 'build:ts', '--silent'], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

/** Echoes the server's output with a prefix and lets the demo wait for a line to appear. */
function watchOutput(child) {
  let seen = '';
  let partial = '';
  const waiters = [];
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk) => {
    seen += chunk;
    const lines = (partial + chunk).split('\n');
    partial = lines.pop();
    for (const line of lines) console.log(`[server] ${line}`);
    for (const w of waiters.splice(0)) {
      if (w.pattern.test(seen)) w.resolve();
      else waiters.push(w);
    }
  });
  return (pattern, timeoutMs) =>
    new Promise((resolve, reject) => {
      if (pattern.test(seen)) return resolve();
      const timer = setTimeout(() => reject(new Error(`server did not print ${pattern} within ${timeoutMs} ms`)), timeoutMs);
      child.once('exit', (code) => reject(new Error(`server exited with ${code} before it was ready`)));
      waiters.push({ pattern, resolve: () => { clearTimeout(timer); resolve(); } });
    });
}

function get(url) {
  return new Promise((resolve, reject) => {
    http.get(url, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode, body }));
    }).on('error', reject);
  });
}

async function main() {
  buildIfNeeded();
  console.log('[demo] starting: quantum-vpn demo --mode server');
  const server = spawn(process.execPath, [cli, 'demo', '--mode', 'server'], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const waitFor = watchOutput(server);
    await waitFor(/listening on \S+/, 30_000);
    await waitFor(/observability on http:\/\/\S+/, 10_000);
    console.log('[demo] running: quantum-vpn demo --mode client --message "Hello from a post-quantum tunnel" --verbose');
    const client = spawnSync(process.execPath, [cli, 'demo', '--mode', 'client', '--message', 'Hello from a post-quantum tunnel', '--verbose'], {
      cwd: root,
      stdio: 'inherit',
    });
    if (client.status !== 0) throw new Error(`the client exited with ${client.status}`);
    const metrics = await get('http://127.0.0.1:9090/metrics');
    const health = await get('http://127.0.0.1:9090/health');
    console.log(`[demo] GET http://127.0.0.1:9090/metrics -> ${metrics.status}; a few of its lines:`);
    for (const line of metrics.body.split('\n')) {
      if (/^quantum_vpn_(sessions_total|bytes_received_total|bytes_sent_total|handshake_duration_seconds_count|fips_mode)\b/.test(line)) console.log(`  ${line}`);
    }
    console.log(`[demo] GET http://127.0.0.1:9090/health -> ${health.status} ${JSON.parse(health.body).status}`);
  } finally {
    server.kill('SIGTERM');
    const code = await new Promise((resolve) => (server.exitCode !== null ? resolve(server.exitCode) : server.once('exit', resolve)));
    console.log(`[demo] server stopped on SIGTERM (exit code ${code})`);
  }
}

main().catch((err) => {
  console.error(`[demo] failed: ${err.message}`);
  process.exitCode = 1;
});
