/** The configuration schema: in step with forward's flags and with the published docs/config.schema.json. */
import { expect } from 'chai';
import { readFileSync, writeFileSync } from 'node:fs';
import { FORWARD_FLAGS } from '../../lib/cli/forward.js';
import { configJsonSchema, SERVICE_KEYS, TOP_LEVEL_KEYS } from '../../lib/config/schema.js';

const PUBLISHED = new URL('../../docs/config.schema.json', import.meta.url);

describe('config: schema', () => {
  it("a service's keys are forward's flags (but the process-wide ones, and workers), and its role", () => {
    const processWide = new Set(['obs-addr', 'log-level', 'log-format', 'tracing', 'fips']);
    const expected = FORWARD_FLAGS.map((f) => f.name).filter((n) => !processWide.has(n) && n !== 'workers');
    expect([...SERVICE_KEYS].sort()).to.deep.equal([...expected, 'role'].sort());
    for (const key of processWide) expect(TOP_LEVEL_KEYS).to.include(key);
  });

  it('docs/config.schema.json is the schema generated from lib/config/schema.ts (UPDATE_CONFIG_SCHEMA=1 rewrites it)', () => {
    const text = `${JSON.stringify(configJsonSchema(), null, 2)}\n`;
    if (process.env.UPDATE_CONFIG_SCHEMA === '1') writeFileSync(PUBLISHED, text);
    expect(readFileSync(PUBLISHED, 'utf8')).to.equal(text);
  });
});
