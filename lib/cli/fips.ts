/**
 * FIPS mode for the CLI: `--fips` (switch the process to FIPS mode before any tunnel exists), and
 * the `fips` command that sets a machine up for it:
 *
 *   quantum-vpn fips install [--dir DIR]   runs `openssl fipsinstall` against the addon's own
 *                                          FIPS module and writes the addon's FIPS configuration
 *   quantum-vpn fips status [--dir DIR]    says whether FIPS mode starts here, and why not
 *
 * The module (`ossl-modules/fips.so`) and the statically linked `openssl` program sit beside the
 * addon (scripts/build-native.cjs puts them there), so this works the same in a checkout and in a
 * project that depends on the package, where `npm run fips:install` does not exist.
 */
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { defaultConfigDir, enable, enableFromEnvironment, status, type FipsStatus } from '../fips/index.js';
import { addonPath } from '../native.js';
import { CliError, type FlagSpec, type ParsedArgs, UsageError } from './args.js';
import { type Command, out } from './common.js';

/** Enables FIPS mode, or fails with a message saying why (not installed, self-test failure...). */
export async function enableFips(configDir?: string): Promise<FipsStatus> {
  try {
    return enable(configDir === undefined ? {} : { configDir });
  } catch (e) {
    throw new CliError(`cannot enable FIPS mode: ${(e as Error).message}`, { cause: e });
  }
}

export { status as fipsStatus };

/** Honours QUANTUM_TUNNEL_FIPS=1 (and the FIPS build profile), as importing the package does. */
export function fipsFromEnvironment(): void {
  try {
    enableFromEnvironment();
  } catch (e) {
    throw new CliError(`cannot enable FIPS mode (QUANTUM_TUNNEL_FIPS): ${(e as Error).message}`, { cause: e });
  }
}

// ---- quantum-vpn fips ---------------------------------------------------------------------------

/** The package's root: the nearest directory above this module with quantum-tunnel's package.json. */
function packageRoot(): string {
  let dir = typeof __dirname === 'string' ? __dirname : dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'quantum-tunnel') return dir;
    dir = dirname(dir);
  }
  throw new CliError('cannot find the quantum-tunnel package directory (for fips/openssl-fips.cnf.in)');
}

/** Where the addon's FIPS module and `openssl` program are, checked. */
function fipsFiles(): { module: string; openssl: string } {
  const dir = dirname(addonPath);
  const module = join(dir, 'ossl-modules', 'fips.so');
  const openssl = join(dir, 'openssl');
  for (const f of [module, openssl]) {
    if (!existsSync(f)) {
      throw new CliError(
        `${f} is missing: the addon (${addonPath}) was built without its FIPS files; rebuild it (npm rebuild quantum-tunnel, or npm run build in a checkout)`,
      );
    }
  }
  return { module, openssl };
}

/** One line saying what FIPS mode runs on, from a started status. */
function startedLine(st: FipsStatus): string {
  const provider = st.provider ? `${st.provider.name} ${st.provider.version}` : 'FIPS provider';
  const tests = st.selfTests ? `${st.selfTests.results.filter((r) => r.passed).length}/${st.selfTests.results.length} self-tests passed` : 'self-tests not run';
  const integrity = st.integrity?.verified ? 'addon integrity verified' : 'addon integrity NOT verified';
  return `${provider}; ${tests}; ${integrity}${st.profile === 'fips' ? '; FIPS build profile' : ''}`;
}

async function install(dir: string): Promise<number> {
  const { module, openssl } = fipsFiles();
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const moduleCnf = join(dir, 'fipsmodule.cnf');
  const tmp = `${moduleCnf}.tmp`;
  out(`Running openssl fipsinstall for ${module}`);
  // The provider runs its self-tests and computes its module MAC here, on this machine.
  try {
    await promisify(execFile)(openssl, ['fipsinstall', '-module', module, '-out', tmp, '-provider_name', 'fips'], { timeout: 120_000 });
  } catch (e) {
    rmSync(tmp, { force: true });
    const detail = String((e as { stderr?: string }).stderr ?? (e as Error).message).trim().split('\n').slice(-3).join(' / ');
    throw new CliError(`openssl fipsinstall failed: ${detail}`, { cause: e });
  }
  renameSync(tmp, moduleCnf);
  const template = readFileSync(join(packageRoot(), 'fips', 'openssl-fips.cnf.in'), 'utf8');
  const config = join(dir, 'openssl-fips.cnf');
  writeFileSync(config, template.replace('@FIPSMODULE_CNF@', moduleCnf), { mode: 0o600 });
  out(`Wrote ${moduleCnf} and ${config}`);
  // Prove it: start FIPS mode on it now (provider load, module MAC, addon integrity, our KATs).
  const st = await enableFips(dir);
  out(`FIPS mode starts on this machine: ${startedLine(st)}`);
  if (resolve(dir) !== resolve(defaultConfigDir())) {
    out(`This is not the default directory: set QUANTUM_TUNNEL_FIPS_DIR=${dir} where the application runs (or pass fips.enable({ configDir }))`);
  }
  return 0;
}

async function report(dir: string, json: boolean): Promise<number> {
  const config = join(dir, 'openssl-fips.cnf');
  let st: FipsStatus | undefined;
  let error: string | undefined;
  try {
    st = enable({ configDir: dir });
  } catch (e) {
    error = (e as Error).message;
  }
  if (json) {
    out(JSON.stringify({ configDir: dir, installed: existsSync(config), addon: addonPath, started: st !== undefined, error: error ?? null, status: st ?? status() }, null, 2));
  } else {
    out(`Configuration: ${config} (${existsSync(config) ? 'present' : 'missing'})`);
    out(`Addon: ${addonPath} (build profile ${status().profile})`);
    out(st ? `FIPS mode: starts (${startedLine(st)})` : `FIPS mode: does not start: ${error}`);
  }
  return st ? 0 : 1;
}

const FIPS_FLAGS: FlagSpec[] = [
  { name: 'dir', kind: 'string', metavar: 'DIR', defaultText: '$QUANTUM_TUNNEL_FIPS_DIR or ~/.config/quantum-tunnel/fips', help: 'Where the FIPS configuration is written (install) or read (status)' },
  { name: 'json', kind: 'boolean', default: false, help: 'status: print one JSON object (the directory, whether FIPS mode starts, fips.status())' },
];

export const fipsCommand: Command = {
  name: 'fips',
  summary: 'Set this machine up for FIPS mode (fipsinstall), or check it',
  synopsis: 'quantum-vpn fips install [--dir DIR]\n       quantum-vpn fips status [--dir DIR] [--json]',
  description:
    'install: runs `openssl fipsinstall` with the addon\'s own FIPS module (its self-tests run and\n' +
    'its MAC is written for this machine), writes openssl-fips.cnf, then starts FIPS mode on it\n' +
    'to prove it works. Run it on every machine, and again after the addon is rebuilt; never\n' +
    'copy the files between machines. status: says whether FIPS mode starts here, and why not.\n' +
    'Exit code 0 when FIPS mode starts, 1 otherwise.',
  flags: FIPS_FLAGS,
  maxPositionals: 1,
  managesFips: true,
  async run(args: ParsedArgs): Promise<number> {
    const action = args.positionals[0];
    const dir = resolve(typeof args.flags.dir === 'string' && args.flags.dir !== '' ? args.flags.dir : defaultConfigDir());
    if (action === 'install') {
      if (args.given.has('json')) throw new UsageError('--json applies to fips status only');
      return install(dir);
    }
    if (action === 'status') return report(dir, args.flags.json === true);
    throw new UsageError(action === undefined ? 'say what to do: install or status' : `unknown action ${JSON.stringify(action)}: expected install or status`);
  },
};
