/**
 * Whether a handshake runs its key-exchange steps on the libuv threadpool: always, never, or as
 * a function asked at each step (the tunnel's 'auto': only while enough handshakes run at once
 * for a second core to pay for the threadpool round trip).
 */
export type OffloadPolicy = boolean | (() => boolean);

export function offloadNow(policy: OffloadPolicy | undefined): boolean {
  return typeof policy === 'function' ? policy() : policy === true;
}
