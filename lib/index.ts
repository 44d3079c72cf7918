/**
 * quantum-tunnel: a post-quantum secure tunnel for Node.js.
 *
 * - `listen()` / `dial()` and {@link Tunnel}: protocol v2 over TCP (docs/PROTOCOL.md), a hybrid
 *   X25519 or P-384 + ML-KEM key exchange with PSK authentication, tickets and key updates; the
 *   Quantum-Go v1 protocol in legacy mode (`legacyV1`).
 * - `crypto`: the crypto core over the addon's own OpenSSL 3.5.
 */
export * as crypto from './crypto/index.js';
/**
 * FIPS mode: `fips.enable()` (or QUANTUM_TUNNEL_FIPS=1) switches the crypto core to the OpenSSL 3.5
 * FIPS provider after its self-tests; `fips.status()` reports the module's state (docs/FIPS.md).
 */
export * as fips from './fips/index.js';
export { QuantumTunnelError, ErrorCode, type ErrorCodeValue } from './errors.js';
export { listen, Listener, type HandshakeErrorEvent } from './tunnel/listener.js';
export { dial, fetchServerKey, type DialAddress } from './tunnel/dial.js';
export { Tunnel, type TunnelInfo, type AlertEvent, type CloseState } from './tunnel/tunnel.js';
export type { CipherName, DialOptions, KemGroupName, ListenOptions, ProxyProtocolOption, PskOption, ResumptionState, ServerAuthOption, TunnelOptions } from './tunnel/options.js';
export { IdentityKey, PublicIdentityKey, AuthorizedPeers, type AuthorizedPeer } from './identity/keys.js';
export { CertificateIdentity } from './identity/certificates.js';
export type { PeerIdentity, PskPeerIdentity, KeyPeerIdentity, CertificatePeerIdentity } from './protocol/peerIdentity.js';
export type { RateLimitKind, TunnelObserver, HandshakeWatch, HandshakeOutcome, HandshakeContext, RekeyWatch, PeerAddress, ConnectionAdmission } from './tunnel/observer.js';
export { TicketManager, type TicketManagerOptions, type TicketRedemption } from './protocol/ticket.js';
export { TicketIssuer, ClientTicketStore, type TicketIssuerOptions, type ClientTicketStoreOptions } from './protocol/v2/tickets.js';
export { MemoryAntiReplayStore, type AntiReplayStore, type MemoryAntiReplayStoreOptions } from './protocol/antiReplay.js';
/** Pools of pre-opened tunnels to one server: `createTunnelPool()` (docs/OPERATIONS.md, "Connection pool"). */
export { createTunnelPool, type TunnelPool, type TunnelPoolOptions, type TunnelPoolStats, type PooledTunnel, type PoolDialOptions, type AcquireOptions } from './pool/tunnelPool.js';
export { registerTunnelPoolMetrics, type TunnelPoolMetrics, type TunnelPoolMetricsOptions } from './pool/poolMetrics.js';

// QUANTUM_TUNNEL_FIPS=1 or a FIPS-profile build: FIPS mode before anything else runs.
import { enableFromEnvironment } from './fips/index.js';
enableFromEnvironment();
export * from './ops/index.js';
