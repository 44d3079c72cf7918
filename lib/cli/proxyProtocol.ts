/**
 * `quantum-vpn forward --proxy-protocol v1|v2|any --proxy-from CIDR[,CIDR]`: the server side
 * behind a TCP load balancer that sends PROXY protocol headers (listen()'s `proxyProtocol`); and
 * `--send-proxy v1|v2`: the server side sending one to its --to service.
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
  {
    name: 'send-proxy',
    kind: 'string',
    metavar: 'v1|v2',
    help: 'Server side: start each connection to the --to service with a PROXY protocol header naming the tunnel\'s client, for services that read one (nginx proxy_protocol, HAProxy accept-proxy)',
  },
];

/** The PROXY protocol settings of forward's server side. */
export interface ProxyFlags {
  /** listen()'s `proxyProtocol` (--proxy-protocol, --proxy-from). */
  listen?: ProxyProtocolOption;
  /** The header version sent to the --to service (--send-proxy). */
  send?: 'v1' | 'v2';
}

/** The PROXY protocol flags, checked (usage errors name the flag). */
export function proxyFlags(flags: FlagValues): ProxyFlags {
  const send = flags['send-proxy'];
  if (send !== undefined && send !== 'v1' && send !== 'v2') throw new UsageError(`invalid --send-proxy ${JSON.stringify(send)}: expected v1 or v2`);
  return { listen: proxyProtocolFromFlags(flags), send };
}

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
