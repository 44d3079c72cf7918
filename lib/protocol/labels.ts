/** The KDF labels of the wire protocol (docs/PROTOCOL.md §4). ASCII, fed after a BE32 length. */
export const Label = Object.freeze({
  CHKEM_SHARED_SECRET: 'CH-KEM-v1-SharedSecret',
  HANDSHAKE: 'CH-KEM-VPN-Handshake',
  TRAFFIC: 'CH-KEM-VPN-Traffic',
  CLIENT_FINISHED: 'CH-KEM-VPN-ClientFinished',
  SERVER_FINISHED: 'CH-KEM-VPN-ServerFinished',
  RESUMPTION: 'CH-KEM-VPN-Resumption',
  REKEY: 'CH-KEM-VPN-Rekey',
  /** Used only by the power-on self-test KAT. */
  POST_KAT: 'POST-KAT-TEST',
});
