/**
 * `quantum-vpn forward --proxy-protocol v1|v2|any --proxy-from CIDR[,CIDR]`: the server side
 * behind a TCP load balancer that sends PROXY protocol headers (listen()'s `proxyProtocol`).
 */
import { QuantumTunnelError } from '../errors.js';
import type { ProxyProtocolOption } from '../tunnel/options.js';
import { resolveProxyProtocol } from '../tunnel/options.js';
import { type FlagSpec, type FlagValues, UsageError } from './args.js';

export const PROXY_PROTOCOL_FLAGS: FlagSpec[] = [
  {
    name: 'proxy-protocol',
    kind: 'string',
    metavar: 'v1|v2|any',
    help: 'Server side: every connection comes through a TCP load balancer that starts it with a PROXY protocol header (HAProxy send-proxy = v1, send-proxy-v2 = v2); limits, logs and metrics then see the client it names. Needs --proxy-from',
  },
  {
    name: 'proxy-from',
    kind: 'string',
    metavar: 'CIDR[,CIDR]',
    help: 'Server side, with --proxy-protocol: the balancers\' addresses or CIDR blocks; connections from anywhere else are refused',
  },
];

/** The `proxyProtocol` listen() option of the flags, or undefined without --proxy-protocol. */
export function proxyProtocolFromFlags(flags: FlagValues): ProxyProtocolOption | undefined {
  const accept = flags['proxy-protocol'];
  const from = flags['proxy-from'];
  if (accept === undefined || accept === '') {
    if (from !== undefined) throw new UsageError('--proxy-from needs --proxy-protocol');
    return undefined;
  }
  if (accept !== 'v1' && accept !== 'v2' && accept !== 'any') throw new UsageError(`invalid --proxy-protocol ${JSON.stringify(accept)}: expected v1, v2 or any`);
  if (from === undefined || String(from).trim() === '') throw new UsageError('--proxy-protocol needs --proxy-from: the balancers allowed to name clients');
  const option: ProxyProtocolOption = { accept, trustedSources: String(from).split(',').map((s) => s.trim()) };
  try {
    resolveProxyProtocol(option); // the same checks listen() runs, reported as a usage error
  } catch (err) {
    if (err instanceof QuantumTunnelError) throw new UsageError(`invalid --proxy-from: ${err.message.replace(/^proxyProtocol\.trustedSources: /, '')}`);
    throw err;
  }
  return option;
}
