/** Secret handles: the opaque native objects that hold secrets, and helpers over them. */
import { native, type PrivateKey, type Secret } from '../native.js';

export type { PrivateKey, Secret };

const SecretClass = (native as unknown as { Secret: new (...args: never[]) => Secret }).Secret;
const PrivateKeyClass = (native as unknown as { PrivateKey: new (...args: never[]) => PrivateKey }).PrivateKey;

/** True when `value` is a {@link Secret} handle. */
export function isSecret(value: unknown): value is Secret {
  return value instanceof SecretClass;
}

/** True when `value` is a {@link PrivateKey} handle. */
export function isPrivateKey(value: unknown): value is PrivateKey {
  return value instanceof PrivateKeyClass;
}

/**
 * Compares two secrets, or a secret and bytes, in constant time (the lengths are not secret).
 * Never throws for unequal lengths: it returns false.
 */
export function timingSafeEqual(a: Secret | Uint8Array, b: Secret | Uint8Array): boolean {
  return native.timingSafeEqual(a, b);
}

/** Destroys every handle given, ignoring undefined; for `finally` blocks. */
export function destroyAll(...handles: Array<{ destroy(): void } | undefined>): void {
  for (const h of handles) h?.destroy();
}
