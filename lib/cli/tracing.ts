/**
 * `--tracing` for the CLI.
 *
 * - `simple`: a small tracer of our own behind @opentelemetry/api, printing one line per finished
 *   span to stderr. It needs no SDK.
 * - `otel`: @opentelemetry/sdk-node, which the package does not install (about 70 packages): the
 *   user installs it beside quantum-tunnel, and it is loaded only in this case. Exporters and the
 *   service name come from the standard OTEL_* environment variables (for example
 *   OTEL_TRACES_EXPORTER=otlp and OTEL_EXPORTER_OTLP_ENDPOINT, or OTEL_TRACES_EXPORTER=console).
 *
 * Either way the global tracer provider is set, and lib/ops' TracingObserver creates the spans.
 */
import { randomBytes } from 'node:crypto';
import {
  type Attributes,
  type Context,
  type Link,
  type Span,
  type SpanAttributes,
  type SpanAttributeValue,
  type SpanContext,
  SpanKind,
  type SpanOptions,
  type SpanStatus,
  SpanStatusCode,
  type TimeInput,
  trace,
  type Tracer,
  type TracerProvider,
  TraceFlags,
} from '@opentelemetry/api';
import { CliError, UsageError } from './args.js';

export type TracingMode = 'none' | 'simple' | 'otel';

/**
 * The @opentelemetry/sdk-node versions to install for `--tracing otel`: the 0.223 line runs on
 * Node 20.6+ (0.300 and later need Node 22.15) and takes the @opentelemetry/api 1.x we use; it
 * is the one the test suite runs.
 */
export const OTEL_SDK_SPEC = '@opentelemetry/sdk-node@0.223';

export function parseTracingMode(value: string): TracingMode {
  const v = value.trim().toLowerCase();
  if (v === 'none' || v === 'simple' || v === 'otel') return v;
  throw new UsageError(`invalid --tracing ${JSON.stringify(value)}: expected none, simple or otel`);
}

/** Turns a span into one plain line: name, duration, status, ids, kind and attributes. */
function formatSpan(s: SimpleSpan, endMs: number): string {
  const ms = (endMs - s.startMs).toFixed(3);
  const parts = [`span ${s.name}`, `${ms}ms`, `status=${statusName(s.status.code)}`];
  if (s.status.message) parts.push(`error=${JSON.stringify(s.status.message)}`);
  parts.push(`kind=${SpanKind[s.kind] ?? s.kind}`, `trace=${s.context.traceId}`, `span_id=${s.context.spanId}`);
  if (s.parentSpanId) parts.push(`parent=${s.parentSpanId}`);
  for (const [k, v] of Object.entries(s.attributes)) parts.push(`${k}=${typeof v === 'string' ? JSON.stringify(v) : JSON.stringify(v)}`);
  for (const e of s.events) parts.push(`event=${JSON.stringify(e)}`);
  return parts.join(' ');
}

function statusName(code: SpanStatusCode): string {
  return code === SpanStatusCode.OK ? 'OK' : code === SpanStatusCode.ERROR ? 'ERROR' : 'UNSET';
}

function timeMs(t: TimeInput | undefined): number {
  if (t === undefined) return Date.now();
  if (typeof t === 'number') return t;
  if (t instanceof Date) return t.getTime();
  if (Array.isArray(t)) return t[0] * 1000 + t[1] / 1e6;
  return Date.now();
}

class SimpleSpan implements Span {
  readonly context: SpanContext;
  readonly attributes: Attributes = {};
  readonly events: string[] = [];
  status: SpanStatus = { code: SpanStatusCode.UNSET };
  private ended = false;

  constructor(
    public name: string,
    readonly kind: SpanKind,
    readonly startMs: number,
    readonly parentSpanId: string | undefined,
    traceId: string,
    private readonly write: (line: string) => void,
  ) {
    this.context = { traceId, spanId: randomBytes(8).toString('hex'), traceFlags: TraceFlags.SAMPLED };
  }

  spanContext(): SpanContext {
    return this.context;
  }

  setAttribute(key: string, value: SpanAttributeValue): this {
    if (!this.ended && value !== undefined) this.attributes[key] = value;
    return this;
  }

  setAttributes(attributes: SpanAttributes): this {
    for (const [k, v] of Object.entries(attributes)) if (v !== undefined) this.setAttribute(k, v);
    return this;
  }

  addEvent(name: string): this {
    if (!this.ended) this.events.push(name);
    return this;
  }

  addLink(_link: Link): this {
    return this;
  }

  addLinks(_links: Link[]): this {
    return this;
  }

  setStatus(status: SpanStatus): this {
    if (!this.ended && this.status.code !== SpanStatusCode.OK && status.code !== SpanStatusCode.UNSET) this.status = { ...status };
    return this;
  }

  updateName(name: string): this {
    if (!this.ended) this.name = name;
    return this;
  }

  end(endTime?: TimeInput): void {
    if (this.ended) return;
    this.ended = true;
    this.write(formatSpan(this, timeMs(endTime)));
  }

  isRecording(): boolean {
    return !this.ended;
  }

  recordException(exception: unknown): void {
    const e = exception as { name?: string; message?: string; code?: string } | string;
    this.events.push(typeof e === 'string' ? `exception: ${e}` : `exception: ${e?.code ?? e?.name ?? 'Error'}`);
  }
}

class SimpleTracer implements Tracer {
  constructor(private readonly write: (line: string) => void) {}

  startSpan(name: string, options: SpanOptions = {}, context?: Context): Span {
    const parent = options.root ? undefined : context ? trace.getSpanContext(context) : undefined;
    const traceId = parent?.traceId ?? randomBytes(16).toString('hex');
    const span = new SimpleSpan(name, options.kind ?? SpanKind.INTERNAL, timeMs(options.startTime), parent?.spanId, traceId, this.write);
    if (options.attributes) span.setAttributes(options.attributes);
    return span;
  }

  startActiveSpan<F extends (span: Span) => unknown>(name: string, ...rest: unknown[]): ReturnType<F> {
    const fn = rest[rest.length - 1] as F;
    const options = (rest.length >= 2 ? rest[0] : undefined) as SpanOptions | undefined;
    const ctx = (rest.length >= 3 ? rest[1] : undefined) as Context | undefined;
    return fn(this.startSpan(name, options, ctx)) as ReturnType<F>;
  }
}

/** A TracerProvider whose spans print as lines through `write` (stderr in the CLI). */
export class SimpleTracerProvider implements TracerProvider {
  private readonly tracer: SimpleTracer;

  constructor(write: (line: string) => void) {
    this.tracer = new SimpleTracer(write);
  }

  getTracer(): Tracer {
    return this.tracer;
  }
}

export interface TracingSetup {
  shutdown(): Promise<void>;
}

const NOOP: TracingSetup = { shutdown: async () => undefined };

/** Installs the global tracer provider for `mode`. */
export async function setupTracing(mode: TracingMode): Promise<TracingSetup> {
  if (mode === 'none') return NOOP;
  if (mode === 'simple') {
    trace.setGlobalTracerProvider(new SimpleTracerProvider((line) => process.stderr.write(`${line}\n`)));
    return { shutdown: async () => trace.disable() };
  }
  // A variable specifier keeps bundlers from pulling the SDK in: it is loaded only here.
  const specifier = '@opentelemetry/sdk-node';
  let sdkModule: { NodeSDK: new (config?: Record<string, unknown>) => { start(): void; shutdown(): Promise<void> } };
  try {
    sdkModule = (await import(specifier)) as typeof sdkModule;
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
      throw new CliError(
        `--tracing otel needs the OpenTelemetry SDK, which quantum-tunnel does not install: run \`npm install ${OTEL_SDK_SPEC}\` ` +
          'in the project that runs quantum-vpn (with -g beside a global quantum-vpn), or use --tracing simple',
      );
    }
    throw new CliError(`--tracing otel: cannot load @opentelemetry/sdk-node: ${(err as Error).message}`, { cause: err });
  }
  const config: Record<string, unknown> = {};
  if (!process.env.OTEL_SERVICE_NAME) config.serviceName = 'quantum-vpn';
  const sdk = new sdkModule.NodeSDK(config);
  sdk.start();
  return {
    shutdown: async () => {
      // Flushes pending spans; an unreachable collector must not hold the exit for long.
      let timer: NodeJS.Timeout | undefined;
      const limit = new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          process.stderr.write('quantum-vpn: tracing: spans not flushed within 5 s; giving up\n');
          resolve();
        }, 5000);
      });
      try {
        await Promise.race([sdk.shutdown(), limit]);
        clearTimeout(timer);
      } catch (err) {
        clearTimeout(timer);
        process.stderr.write(`quantum-vpn: tracing shutdown failed: ${(err as Error).message}\n`);
      }
    },
  };
}
