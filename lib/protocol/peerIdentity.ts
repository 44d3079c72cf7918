/** Who the peer proved to be: what `tunnel.info().peerIdentity` reports (docs/SECURITY.md). */
export type PeerIdentity = PskPeerIdentity | KeyPeerIdentity | CertificatePeerIdentity;

/** A peer that proved an external PSK (also when resumed from a ticket issued under one). */
export interface PskPeerIdentity {
  type: 'psk';
  /** The PSK identity, as UTF-8 text (invalid sequences replaced). */
  identity: string;
}

/** A peer that proved its pinned identity key (docs/PROTOCOL.md §13). */
export interface KeyPeerIdentity {
  type: 'key';
  /** `SHA256:…` of the peer's public key. */
  fingerprint: string;
  /** The key's group option name (`x25519-mlkem1024`, ...). */
  group: string;
  /** The comment of the authorized-peers or known-servers entry that admitted it ('' if none). */
  comment: string;
}


/** A peer that proved the key of an X.509 certificate that chains to a trusted CA (§14). */
export interface CertificatePeerIdentity {
  type: 'certificate';
  /** The leaf's subject, RFC 4514 (`CN=db.example.com,O=Example`). */
  subject: string;
  issuer: string;
  /** Upper-case hexadecimal. */
  serialNumber: string;
  /** `SHA256:…` of the leaf's SubjectPublicKeyInfo. */
  fingerprint: string;
  notAfter: Date;
  dnsNames: string[];
  ipAddresses: string[];
}
