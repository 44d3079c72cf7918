/**
 * Writes the protocol v2 test vectors (Appendix B of docs/PROTOCOL.md):
 * test/fixtures/v2-vectors.json and docs/PROTOCOL-V2-VECTORS.md, rendered from it.
 *
 *   npm run vectors:v2      (QUANTUM_TUNNEL_TESTING=1 node --import tsx scripts/v2-vectors.ts)
 *
 * Every value is computed by the specification step by step over the library's primitives and
 * over an independent reference, and by the real state machines; the script stops, writing
 * nothing, unless all of them agree (test/helpers/v2Vectors.ts).
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { generateDocument } from '../test/helpers/v2Vectors.js';
import { renderV2Vectors } from '../test/helpers/v2VectorsRender.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const jsonPath = 'test/fixtures/v2-vectors.json';
const mdPath = 'docs/PROTOCOL-V2-VECTORS.md';

async function main(): Promise<void> {
  const { doc, checked } = await generateDocument();
  const json = `${JSON.stringify(doc, null, 2)}\n`;
  // Render what a reader of the file gets back, not the in-memory object.
  const md = renderV2Vectors(JSON.parse(json));
  writeFileSync(`${root}${jsonPath}`, json);
  writeFileSync(`${root}${mdPath}`, md);
  const cases = (doc.cases as unknown[]).length;
  console.log(`${cases} cases; values checked: ${checked.derivation} derived (library), ${checked.reference} derived (reference), ${checked.stateMachines} from the state machines`);
  console.log(`wrote ${jsonPath} (${json.length} bytes) and ${mdPath} (${Buffer.byteLength(md)} bytes)`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
