/**
 * How many handshakes run in this process now (both roles), and the 'auto' offload policy that
 * reads it (TunnelOptions.offloadCrypto).
 */
let inProgress = 0;

/**
 * From this many handshakes at once, 'auto' runs key-exchange steps on the threadpool: below it
 * the event loop has time to spare and a threadpool round trip only adds latency
 * (docs/BENCHMARKS.md, "Both cores", has the crossover measured).
 */
export const AUTO_OFFLOAD_FROM = 4;

export function started(): void {
  inProgress++;
}

export function ended(): void {
  inProgress--;
}

/** Handshakes running now (for tests and metrics). */
export function handshakesInProgress(): number {
  return inProgress;
}

/** The 'auto' offload policy: asked at each key-exchange step. */
export const autoOffload = (): boolean => inProgress >= AUTO_OFFLOAD_FROM;
