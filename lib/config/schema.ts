/**
 * The schema of quantum-vpn's configuration file (`serve --config`, `check-config`), in one
 * place: TypeScript types are inferred from it and docs/config.schema.json is generated from it
 * (test/config/schema.test.ts checks it is in step; UPDATE_CONFIG_SCHEMA=1 rewrites it). Keys are `quantum-vpn forward`'s flag
 * names, and every value is checked by the flag's own parser, so a value means the same in a
 * flag and in a file. Checks across keys (a server needs `to`, authentication...) run after this
 * one, in load.ts, with forward's own code.
 */
import { z } from 'zod';
import { parseDuration, parseHostPort } from '../cli/args.js';
import { ciphersFromFlag, parseObsAddr } from '../cli/common.js';
import { groupsFromFlag } from '../cli/protocol.js';

/** Service names: they become metric labels, log fields and environment variable names. */
export const SERVICE_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;

/**
 * A refinement that runs a flag parser. Only its UsageError counts (a bad value); other errors
 * (a suite not permitted in FIPS mode...) depend on the mode and are reported when loading. The
 * parser's `invalid --flag "value": ` prefix goes: the issue names the key path itself.
 */
function parsedBy(parse: (value: string) => unknown) {
  return (value: string, ctx: z.RefinementCtx): void => {
    try {
      parse(value);
    } catch (e) {
      if ((e as Error)?.name !== 'UsageError') return;
      ctx.addIssue({ code: 'custom', message: stripFlagPrefix((e as Error).message) });
    }
  };
}

/** `invalid --listen "x": expected HOST:PORT` -> `expected HOST:PORT`. */
export function stripFlagPrefix(message: string): string {
  return message.replace(/^invalid (?:--)?[a-z0-9-]* ?"(?:[^"\\]|\\.)*": /, '');
}

const text = (description: string) => z.string({ error: 'expected a string' }).meta({ description });
const flag = (description: string) => z.boolean({ error: 'expected true or false' }).meta({ description });
const count = (description: string) => z.int({ error: 'expected a non-negative integer' }).min(0, { error: 'expected a non-negative integer' }).meta({ description });
const duration = (description: string) =>
  text(`${description} (a duration: 250ms, 30s, 1m30s; 0 for none)`).superRefine(parsedBy((v) => parseDuration(v, '')));
const hostPort = (description: string, allowZero: boolean) =>
  text(`${description} (HOST:PORT, [IPv6]:PORT or :PORT)`).superRefine(parsedBy((v) => parseHostPort(v, '', { defaultHost: '127.0.0.1', allowZero })));
const file = (description: string) => text(`${description} (a file path)`).min(1, { error: 'expected a file path' });

/** One service: the keys of `quantum-vpn forward` (docs/CLI.md), and its role. */
export const ServiceSchema = z
  .strictObject({
    role: z.enum(['server', 'client', 'echo'], { error: 'expected server, client or echo' }).meta({
      description: 'server: tunnels in, TCP out to `to`; client: TCP in, tunnels out to `connect`; echo: tunnels in, every byte sent back',
    }),
    listen: hostPort('Where to accept connections: tunnels (server, echo; ":PORT" = every interface) or plain TCP (client; ":PORT" = 127.0.0.1)', true),
    to: hostPort('Server: the TCP service to protect', false),
    connect: hostPort('Client: the forward server to tunnel to', false),
    cipher: text('aes-gcm or chacha20: only this suite is offered or accepted').superRefine(parsedBy((v) => ciphersFromFlag(v))),
    groups: text('Protocol v2 key exchange groups, comma-separated, in preference order').superRefine(parsedBy((v) => groupsFromFlag(v))),
    'legacy-v1': flag('Speak protocol v1 (Quantum-Go); a server also answers v1 clients'),
    'psk-file': file('Pre-shared key file (quantum-vpn psk)'),
    'psk-identity': text('Server: accept only this identity of the PSK file'),
    identity: file('Our identity key; a server may list several, comma-separated'),
    'passphrase-file': file('Passphrase of an encrypted identity key'),
    'authorized-peers': file('Server: admit only the clients whose keys are listed'),
    'server-key': text("Client: the server's public key, .pub file or SHA256: fingerprint"),
    'known-servers': file('Client: known servers file'),
    cert: file('Our X.509 certificate chain (PEM)'),
    ca: file('CA certificates (PEM)'),
    'server-name': text('Client, with ca: the name the server certificate must hold'),
    crl: file('Certificate revocation lists (PEM)'),
    'trust-on-first-use': flag('Client, with known-servers: record an unknown server key on first use'),
    'no-auth': flag('Run without authentication (refused otherwise)'),
    tickets: flag('Protocol v2 session resumption tickets'),
    'connect-timeout': duration('Limit for each outgoing TCP connection'),
    'handshake-timeout': duration('Limit for each handshake'),
    keepalive: duration('Ping a peer silent this long; close its tunnel when it stays silent (0: off)'),
    'idle-timeout': duration('Close a tunnel after this long without data either way (0: never)'),
    linger: duration('How long a TCP connection may stay half-open after its tunnel closed'),
    'drain-timeout': duration('On stop or reload: how long open connections may finish'),
    'backend-check-interval': duration('Server: how often the `to` service is probed while idle'),
    'max-conns-per-ip': count('Server: concurrent connections per client address (0: unlimited)'),
    'handshake-rate': count('Server: handshakes per second per client address (0: unlimited)'),
    'handshake-burst': count('Server: burst above handshake-rate'),
    'global-handshake-rate': count('Server: handshakes per second over all clients (0: unlimited)'),
    'global-handshake-burst': count('Server: burst above global-handshake-rate'),
    'proxy-protocol': z.enum(['v1', 'v2', 'any'], { error: 'expected v1, v2 or any' }).meta({ description: 'Server: connections come through a TCP load balancer that sends a PROXY protocol header; needs proxy-from' }),
    'proxy-from': text("Server, with proxy-protocol: the balancers' addresses or CIDR blocks, comma-separated"),
    'send-proxy': z.enum(['v1', 'v2'], { error: 'expected v1 or v2' }).meta({ description: 'Server: start each connection to `to` with a PROXY protocol header naming the client' }),
    'pool-min-idle': count('Client: tunnels kept open and ready (0: a dial per connection)'),
    'pool-max-lifetime': duration('Client, with pool-min-idle: replace a ready tunnel unused this long'),
  })
  .partial();

/** The whole file. */
export const ConfigSchema = z.strictObject({
  'log-level': z.enum(['debug', 'info', 'warn', 'error', 'silent'], { error: 'expected debug, info, warn, error or silent' }).optional().meta({ description: 'Log level (default info; reloadable)' }),
  'log-format': z.enum(['text', 'json'], { error: 'expected text or json' }).optional().meta({ description: 'Log format (default text)' }),
  'obs-addr': text('One /metrics, /health, /healthz, /readyz endpoint for every service; empty: none')
    .superRefine(parsedBy((v) => parseObsAddr(v)))
    .optional(),
  fips: flag('Run in FIPS mode').optional(),
  tracing: z.enum(['none', 'simple', 'otel'], { error: 'expected none, simple or otel' }).optional().meta({ description: 'Tracing mode' }),
  watch: flag('Also reload when the file changes (as on SIGHUP)').optional(),
  defaults: ServiceSchema.optional().meta({ description: 'Keys every service inherits unless it sets them' }),
  services: z
    .record(z.string().regex(SERVICE_NAME, { error: 'service names are lower case letters, digits and "-" (at most 63)' }), ServiceSchema, { error: 'expected a map of service name to settings' })
    .meta({ description: 'The services, by name' }),
});

export type ServiceKeys = z.infer<typeof ServiceSchema>;
export type ConfigFile = z.infer<typeof ConfigSchema>;
/** The keys a service may set. */
export const SERVICE_KEYS: readonly string[] = Object.keys(ServiceSchema.shape);
/** The keys of the top level. */
export const TOP_LEVEL_KEYS: readonly string[] = Object.keys(ConfigSchema.shape);

/** The published JSON schema (docs/config.schema.json). */
export function configJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(ConfigSchema, { io: 'input', target: 'draft-2020-12' }),
    title: 'quantum-vpn configuration (serve --config, check-config)',
  };
}
