/** Loads the known-answer fixtures in test/fixtures (copied from the standards and PROTOCOL.md Appendix A). */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const fixturesDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function loadFixture<T = any>(name: string): T {
  return JSON.parse(readFileSync(join(fixturesDir, name), 'utf8')) as T;
}

/** Hex to Buffer, tolerant of upper case (the ACVP files use it). */
export function hex(s: string): Buffer {
  return Buffer.from(s, 'hex');
}

export function sha256Hex(data: Uint8Array): string {
  // node:crypto only for hashing test outputs, never for anything under test.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return createHash('sha256').update(data).digest('hex');
}

import { createHash } from 'node:crypto';
