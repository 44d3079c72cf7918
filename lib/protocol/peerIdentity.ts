/** Who the peer proved to be: what `tunnel.info().peerIdentity` reports (docs/SECURITY.md). */
export type PeerIdentity = PskPeerIdentity | KeyPeerIdentity | CertificatePeerIdentity;

/** A peer that proved an external PSK (also when resumed from a ticket issued under one). */
export interface PskPeerIdentity {
  /** Discriminant. */
  type: 'psk';
  /** The PSK identity, as UTF-8 text (invalid sequences replaced). */
  identity: string;
}

/** A peer that proved its pinned identity key (docs/PROTOCOL.md §13). */
export interface KeyPeerIdentity {
  /** Discriminant. */
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
  /** Discriminant. */
  type: 'certificate';
  /** The leaf's subject, RFC 4514 (`CN=db.example.com,O=Example`). */
  subject: string;
  /** The leaf's issuer, RFC 4514. */
  issuer: string;
  /** Upper-case hexadecimal. */
  serialNumber: string;
  /** `SHA256:…` of the leaf's SubjectPublicKeyInfo. */
  fingerprint: string;
  /** End of the leaf's validity period. */
  notAfter: Date;
  /** The leaf's subjectAltName DNS names. */
  dnsNames: string[];
  /** The leaf's subjectAltName IP addresses, as text. */
  ipAddresses: string[];
}
