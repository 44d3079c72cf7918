/** `quantum-vpn example`: prints annotated TypeScript examples of the library API. */
import type { FlagSpec, ParsedArgs } from './args.js';
import { UsageError } from './args.js';
import { type Command, out } from './common.js';
import { EXAMPLES } from './examples.js';

const FLAGS: FlagSpec[] = [{ name: 'list', kind: 'boolean', default: false, help: 'List the examples by name' }];

function header(): string {
  return [
    '// quantum-tunnel examples: complete ES modules (TypeScript) against the package API.',
    '// Save one as example.mts in a project that depends on quantum-tunnel and run it with',
    '//   node --import tsx example.mts      (or compile it with tsc)',
    '// Each listens on 127.0.0.1 only, on a free port, and cleans up after itself.',
  ].join('\n');
}

export const exampleCommand: Command = {
  name: 'example',
  summary: 'Print annotated TypeScript usage examples',
  synopsis: 'quantum-vpn example [NAME] [--list]',
  description:
    'Prints every example, or only the one called NAME:\n' +
    `${EXAMPLES.map((e) => e.name).join(', ')}.\n` +
    'They are tested: the test suite typechecks and runs each of them against this package.',
  flags: FLAGS,
  maxPositionals: 1,
  async run(args: ParsedArgs): Promise<number> {
    if (args.flags.list === true) {
      const w = Math.max(...EXAMPLES.map((e) => e.name.length)) + 2;
      for (const e of EXAMPLES) out(`${e.name.padEnd(w)}${e.title}`);
      return 0;
    }
    const name = args.positionals[0];
    const chosen = name === undefined ? EXAMPLES : EXAMPLES.filter((e) => e.name === name);
    if (chosen.length === 0) throw new UsageError(`unknown example ${JSON.stringify(name)}: expected one of ${EXAMPLES.map((e) => e.name).join(', ')}`);
    out(header());
    EXAMPLES.forEach((e, i) => {
      if (!chosen.includes(e)) return;
      out('');
      out(`// ==== ${i + 1}. ${e.name}: ${e.title} ${'='.repeat(Math.max(4, 80 - e.name.length - e.title.length - 14))}`);
      out('');
      out(e.code.trimEnd());
    });
    return 0;
  },
};
