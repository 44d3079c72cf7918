/** `--fips` for the CLI: switches the process to FIPS mode before any tunnel exists. */
import { enable, enableFromEnvironment, status, type FipsStatus } from '../fips/index.js';
import { CliError } from './args.js';

/** Enables FIPS mode, or fails with a message saying why (not installed, self-test failure...). */
export async function enableFips(): Promise<FipsStatus> {
  try {
    return enable();
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
