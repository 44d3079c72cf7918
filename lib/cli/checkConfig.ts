/**
 * `quantum-vpn check-config FILE`: checks a configuration file as `serve --config` would before
 * it listens (syntax, schema, each service's keys, environment overrides, and the key files
 * every service names), without listening. Exit 0 with one line per service, or 1 with every error.
 */
import { loadConfig, loadServiceKeys, serviceSummary } from '../config/load.js';
import { type ConfigIssue, formatIssue } from '../config/source.js';
import { type ParsedArgs, UsageError } from './args.js';
import { applyFips, type Command, describeError, err, out, plural } from './common.js';

export const checkConfigCommand: Command = {
  name: 'check-config',
  summary: 'Check a configuration file for serve (and the key files it names)',
  synopsis: 'quantum-vpn check-config FILE',
  description:
    'Reads FILE (.yaml, .yml or .toml) with the QUANTUM_VPN_ environment overrides, checks every\n' +
    'key and every service as `quantum-vpn serve --config FILE` does, and loads the key files the\n' +
    'services name (identity keys, authorized peers, server keys, certificates, PSK files). Prints\n' +
    'one line per service and exits 0, or prints every error as FILE:LINE:COLUMN: KEY: PROBLEM and\n' +
    'exits 1. Nothing listens. See docs/OPERATIONS.md, "Configuration files".',
  flags: [],
  maxPositionals: 1,
  async run(args: ParsedArgs): Promise<number> {
    const file = args.positionals[0];
    if (file === undefined) throw new UsageError('name the configuration file: quantum-vpn check-config FILE');
    const loaded = loadConfig(file);
    if (!loaded.ok) return report(loaded.issues);
    const { config } = loaded;
    if (config.fips) {
      try {
        await applyFips({ fips: true });
      } catch (e) {
        return report([{ origin: { file }, path: 'fips', message: describeError(e) }]);
      }
    }
    const issues = config.services.map(loadServiceKeys).filter((i): i is ConfigIssue => i !== undefined);
    if (issues.length > 0) return report(issues);
    for (const service of config.services) out(serviceSummary(service));
    out(`${file}: OK (${plural(config.services.length, 'service')})`);
    return 0;
  },
};

function report(issues: ConfigIssue[]): number {
  for (const issue of issues) err(formatIssue(issue));
  err(`quantum-vpn check-config: ${plural(issues.length, 'error')}`);
  return 1;
}
