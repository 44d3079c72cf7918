/** `quantum-vpn version`: the package version, the addon's OpenSSL and the FIPS state. */
import { info as cryptoInfo } from '../crypto/info.js';
import type { FlagSpec, ParsedArgs } from './args.js';
import { applyFips, type Command, out, VERSION } from './common.js';
import { fipsStatus } from './fips.js';

const FLAGS: FlagSpec[] = [
  { name: 'json', kind: 'boolean', default: false, help: 'Print one JSON object' },
  { name: 'fips', kind: 'boolean', default: false, help: 'Enable FIPS mode first (shows whether it works on this machine)' },
];

export const versionCommand: Command = {
  name: 'version',
  summary: 'Print the version, the OpenSSL of the addon and the FIPS state',
  synopsis: 'quantum-vpn version [--json] [--fips]',
  description:
    'Prints the package version, the OpenSSL that the addon links (its own 3.5, not the one\n' +
    'inside Node), whether FIPS mode is on, and the addon build profile.',
  flags: FLAGS,
  async run(args: ParsedArgs): Promise<number> {
    await applyFips(args.flags);
    const info = cryptoInfo();
    const fips = fipsStatus();
    const report = {
      version: VERSION,
      openssl: info.openssl,
      nodeOpenssl: process.versions.openssl,
      node: process.version,
      fips: {
        enabled: info.fips,
        mode: fips.mode,
        profile: fips.profile,
        provider: fips.provider ? `${fips.provider.name} ${fips.provider.version}` : null,
      },
      chacha20: info.chacha20.available,
      providers: info.providers.filter((p) => p.active).map((p) => `${p.name} ${p.version}`),
      addon: info.addonPath,
      platform: `${process.platform}-${process.arch}`,
    };
    if (args.flags.json === true) {
      out(JSON.stringify(report, null, 2));
      return 0;
    }
    out(`quantum-vpn version ${report.version}`);
    out(`OpenSSL: ${report.openssl} (the addon's own; Node ${report.node} bundles OpenSSL ${report.nodeOpenssl})`);
    out(
      info.fips
        ? `FIPS mode: on (${report.fips.provider ?? 'FIPS provider'}; addon build profile ${fips.profile})`
        : `FIPS mode: off (enable with --fips or QUANTUM_TUNNEL_FIPS=1; addon build profile ${fips.profile})`,
    );
    out(`Cipher suites: AES-256-GCM${info.chacha20.available ? ', ChaCha20-Poly1305' : ''}`);
    out(`Providers: ${report.providers.join(', ') || 'none'}`);
    out(`Addon: ${report.addon}`);
    out(`Platform: ${report.platform}, Node ${report.node}`);
    return 0;
  },
};
