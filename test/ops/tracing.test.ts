/**
 * TracingObserver: spans from real handshakes, rekeys and resumptions over loopback, recorded with
 * the SDK's InMemorySpanExporter (a devDependency; the library itself uses @opentelemetry/api only).
 */
import { expect } from 'chai';
import { context, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Context, type ContextManager } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { ClientTicketStore, crypto, ErrorCode, SpanNames, TicketIssuer, TicketManager, TracingObserver, VERSION, type Listener, type Tunnel } from '../../lib/index.js';
import { echo, nextTunnel, readExactly, rejectsWithCode, Resources, roundTrip, until, within } from '../helpers/tunnel.js';

const fipsNow = crypto.info().fips;

describe('ops: TracingObserver', function () {
  this.timeout(30_000);
  const res = new Resources();
  let exporter: InMemorySpanExporter;
  let provider: BasicTracerProvider;
  let observer: TracingObserver;

  beforeEach(() => {
    exporter = new InMemorySpanExporter();
    provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    observer = new TracingObserver({ tracer: provider.getTracer('test') });
  });
  afterEach(async () => {
    await res.cleanup();
    await provider.shutdown();
  });

  const spans = (name?: string): ReadableSpan[] => exporter.getFinishedSpans().filter((s) => name === undefined || s.name === name);
  const one = (name: string): ReadableSpan => {
    const found = spans(name);
    expect(found, name).to.have.length(1);
    return found[0]!;
  };

  it('a full handshake: a CLIENT span on the initiator and a SERVER span on the responder, with attributes', async () => {
    const listener = await res.listen({ observer }, echo);
    const served = nextTunnel(listener);
    const t = await res.dial(listener, { observer, ciphers: ['aes-256-gcm'] });
    await served;
    await until(() => spans().length === 2, 5000, 'two handshake spans');
    const client = one(SpanNames.HANDSHAKE_INITIATOR);
    const server = one(SpanNames.HANDSHAKE_RESPONDER);
    expect(client.kind).to.equal(SpanKind.CLIENT);
    expect(server.kind).to.equal(SpanKind.SERVER);
    for (const s of [client, server]) {
      expect(s.status.code).to.equal(SpanStatusCode.OK);
      expect(s.attributes).to.include({
        'quantum.outcome': 'success',
        'quantum.protocol': 'v2',
        'quantum.suite': 'AES-256-GCM',
        'quantum.resumed': false,
        'quantum.resumption_attempted': false,
        'quantum.fips': fipsNow,
        'network.peer.address': '127.0.0.x',
      });
      expect(s.attributes['quantum.group']).to.be.a('string').and.match(/\+ ML-KEM-1024$/);
      expect(s.attributes['quantum.handshake.duration_ms']).to.be.a('number').and.greaterThan(0);
      expect(s.attributes['network.peer.port']).to.be.a('number');
    }
    expect(client.attributes['quantum.role']).to.equal('client');
    expect(server.attributes['quantum.role']).to.equal('server');
    expect(spans(SpanNames.RESUMPTION)).to.have.length(0);
    await roundTrip(t, Buffer.from('no per-record spans'));
    expect(spans()).to.have.length(2);
  });

  it('a rekey: one INTERNAL span on each end, initiated_by_us true on the client only', async () => {
    const listener = await res.listen({ observer }, echo);
    const t = await res.dial(listener, { observer });
    await within(t.rekey(), 10_000, 'rekey');
    await until(() => spans(SpanNames.REKEY).length === 2, 5000, 'two rekey spans');
    const rekeys = spans(SpanNames.REKEY);
    expect(rekeys.map((s) => s.attributes['quantum.rekey.initiated_by_us']).sort()).to.deep.equal([false, true]);
    for (const s of rekeys) {
      expect(s.kind).to.equal(SpanKind.INTERNAL);
      expect(s.status.code).to.equal(SpanStatusCode.OK);
      expect(s.attributes).to.include({ 'quantum.outcome': 'success', 'quantum.fips': fipsNow });
    }
  });

  it('a rekey that never completes ends its span with an error', async () => {
    const listener = await res.listen({}, () => undefined);
    const t = await res.dial(listener, { observer });
    const rekey = t.rekey();
    rekey.catch(() => undefined);
    t.destroy();
    await rejectsWithCode(rekey, [ErrorCode.TUNNEL_CLOSED, ErrorCode.CONNECTION_FAILED]);
    const s = one(SpanNames.REKEY);
    expect(s.status.code).to.equal(SpanStatusCode.ERROR);
    expect(s.attributes).to.include({ 'quantum.outcome': 'failure' });
    expect(s.attributes['error.type']).to.be.oneOf([ErrorCode.TUNNEL_CLOSED, ErrorCode.CONNECTION_FAILED]);
  });

  it('failed handshakes end with status ERROR and the error code, on either side', async () => {
    const listener = await res.listen({ observer }, echo);
    const raw = await res.connect(listener.address().port);
    raw.destroy();
    await until(() => spans(SpanNames.HANDSHAKE_RESPONDER).length === 1, 5000, 'the responder span');
    const server = one(SpanNames.HANDSHAKE_RESPONDER);
    expect(server.status).to.deep.include({ code: SpanStatusCode.ERROR, message: ErrorCode.CONNECTION_FAILED });
    expect(server.attributes).to.include({ 'quantum.outcome': 'failure', 'error.type': ErrorCode.CONNECTION_FAILED });

    const { port } = await res.rawServer((s) => s.end());
    await rejectsWithCode(res.dial(port, { observer }), ErrorCode.CONNECTION_FAILED);
    const client = one(SpanNames.HANDSHAKE_INITIATOR);
    expect(client.kind).to.equal(SpanKind.CLIENT);
    expect(client.status.code).to.equal(SpanStatusCode.ERROR);
    expect(client.attributes['error.type']).to.equal(ErrorCode.CONNECTION_FAILED);
  });

  describe('resumption', () => {
    async function ticketServer(): Promise<{ listener: Listener; first: Tunnel; ticket: Buffer }> {
      const tickets = new TicketManager();
      const listener = await res.listen({ tickets, observer, legacyV1: true }, (t) => {
        if (t.info().resumed) t.pipe(t);
        else t.send(t.issueTicket()).catch(() => undefined);
      });
      const first = await res.dial(listener, { observer, legacyV1: true });
      const ticket = await readExactly(first, 71, 5000);
      return { listener, first, ticket };
    }

    it('a resumed v2 handshake (ticket in-band): resumption spans on both sides, resumed=true', async () => {
      const listener = await res.listen({ tickets: new TicketIssuer({ serverIdentity: Buffer.from('tracing') }), observer }, echo);
      const ticketStore = new ClientTicketStore();
      const first = await res.dial(listener, { observer, ticketStore });
      await until(() => ticketStore.size === 1, 5000, 'the ticket arrived');
      await first.close();
      exporter.reset();
      const t = await res.dial(listener, { observer, ticketStore });
      await roundTrip(t, Buffer.from('resumed'));
      await until(() => spans(SpanNames.RESUMPTION).length === 2, 5000, 'two resumption spans');
      expect(one(SpanNames.HANDSHAKE_INITIATOR).attributes).to.include({ 'quantum.resumed': true, 'quantum.resumption_attempted': true });
      expect(one(SpanNames.HANDSHAKE_RESPONDER).attributes).to.include({ 'quantum.resumed': true });
      for (const r of spans(SpanNames.RESUMPTION)) expect(r.attributes).to.include({ 'quantum.resumed': true, 'quantum.outcome': 'resumed' });
    });

    it('a resumed v1 handshake (legacy): resumption spans under both handshake spans, resumed=true', async () => {
      const { listener, first, ticket } = await ticketServer();
      const state = first.resumptionState(ticket);
      exporter.reset();
      const served = nextTunnel(listener);
      const t = await res.dial(listener, { observer, resumption: state, legacyV1: true });
      await served;
      await roundTrip(t, Buffer.from('resumed'));
      await until(() => spans(SpanNames.RESUMPTION).length === 2, 5000, 'two resumption spans');
      const client = one(SpanNames.HANDSHAKE_INITIATOR);
      const server = one(SpanNames.HANDSHAKE_RESPONDER);
      expect(client.attributes).to.include({ 'quantum.resumed': true, 'quantum.resumption_attempted': true });
      expect(server.attributes).to.include({ 'quantum.resumed': true });
      for (const r of spans(SpanNames.RESUMPTION)) {
        expect(r.kind).to.equal(SpanKind.INTERNAL);
        expect(r.attributes).to.include({ 'quantum.resumed': true, 'quantum.outcome': 'resumed' });
        const parent = r.attributes['quantum.role'] === 'client' ? client : server;
        expect(r.parentSpanContext?.spanId).to.equal(parent.spanContext().spanId);
        expect(r.spanContext().traceId).to.equal(parent.spanContext().traceId);
      }
      state.psk.destroy();
    });

    it('a v1 ticket the server does not accept (legacy): the client resumption span says fallback', async () => {
      const { listener, first, ticket } = await ticketServer();
      const state = first.resumptionState(ticket);
      ticket[ticket.length - 1]! ^= 0xff; // the server cannot open it and does a full handshake
      const forged = { ticket, psk: state.psk };
      exporter.reset();
      const t = await res.dial(listener, { observer, resumption: forged, legacyV1: true });
      expect(t.info().resumed).to.equal(false);
      await until(() => spans(SpanNames.HANDSHAKE_RESPONDER).length === 1, 5000, 'the responder span');
      const r = one(SpanNames.RESUMPTION);
      expect(r.attributes).to.include({ 'quantum.role': 'client', 'quantum.resumed': false, 'quantum.outcome': 'fallback' });
      state.psk.destroy();
    });
  });

  it('the default tracer is the global provider\'s "quantum-tunnel" tracer, with the package version', async () => {
    expect(trace.setGlobalTracerProvider(provider)).to.equal(true);
    try {
      const viaGlobal = new TracingObserver();
      const listener = await res.listen({ observer: viaGlobal }, echo);
      await res.dial(listener);
      await until(() => spans(SpanNames.HANDSHAKE_RESPONDER).length === 1, 5000, 'the responder span');
      expect(one(SpanNames.HANDSHAKE_RESPONDER).instrumentationScope).to.include({ name: 'quantum-tunnel', version: VERSION });
    } finally {
      trace.disable();
    }
  });

  it('without an SDK every span is a no-op and tunnels work', async () => {
    const noop = new TracingObserver();
    const listener = await res.listen({ observer: noop }, echo);
    const t = await res.dial(listener, { observer: noop });
    await within(t.rekey(), 10_000, 'rekey');
    await roundTrip(t, Buffer.from('still fine'));
  });

  it('nests the handshake under the active span; peer address masked, full or omitted', () => {
    // A minimal synchronous context manager (the SDK's async one is not a dependency).
    let active: Context = ROOT_CONTEXT;
    const manager: ContextManager = {
      active: () => active,
      with(ctx, fn, thisArg, ...args) {
        const previous = active;
        active = ctx;
        try {
          return fn.call(thisArg, ...args);
        } finally {
          active = previous;
        }
      },
      bind: (_ctx, target) => target,
      enable() {
        return this;
      },
      disable() {
        return this;
      },
    };
    context.setGlobalContextManager(manager);
    try {
      const tracer = provider.getTracer('test');
      const parent = tracer.startSpan('user.request');
      const ctx = { role: 'client' as const, resumptionAttempted: false, address: '2001:db8:1:2:3:4:5:6', port: 443 };
      context.with(trace.setSpan(context.active(), parent), () => observer.onHandshakeStart(ctx).succeeded!({ protocol: 'v2', suite: 'AES-256-GCM', resumed: false, resumptionAttempted: false, durationMs: 1.5, fips: true }));
      parent.end();
      const hs = one(SpanNames.HANDSHAKE_INITIATOR);
      expect(hs.parentSpanContext?.spanId).to.equal(parent.spanContext().spanId);
      expect(hs.attributes).to.include({ 'network.peer.address': '2001:db8:1:2:x:x:x:x', 'network.peer.port': 443, 'quantum.fips': true });

      exporter.reset();
      new TracingObserver({ tracer, peerAddress: 'full' }).onHandshakeStart(ctx).failed!(ErrorCode.HANDSHAKE_TIMEOUT);
      new TracingObserver({ tracer, peerAddress: 'none', fipsMode: true }).onHandshakeStart(ctx).failed!(ErrorCode.HANDSHAKE_TIMEOUT);
      const [full, none] = spans(SpanNames.HANDSHAKE_INITIATOR);
      expect(full!.attributes['network.peer.address']).to.equal('2001:db8:1:2:3:4:5:6');
      expect(none!.attributes).to.not.have.property('network.peer.address');
      expect(none!.attributes['quantum.fips']).to.equal(true); // a fixed fipsMode value
      expect(full!.attributes['quantum.fips']).to.equal(fipsNow);
      expect(full!.parentSpanContext).to.equal(undefined);
    } finally {
      context.disable();
    }
  });

  it('a watch called twice ends its span once', () => {
    const w = observer.onHandshakeStart({ role: 'server', resumptionAttempted: false, address: '10.0.0.1', port: 1 });
    w.succeeded!({ protocol: 'v2', suite: 'AES-256-GCM', resumed: true, resumptionAttempted: true, durationMs: 1, fips: false });
    w.failed!(ErrorCode.TIMEOUT);
    expect(spans(SpanNames.HANDSHAKE_RESPONDER)).to.have.length(1);
    expect(one(SpanNames.RESUMPTION).attributes).to.include({ 'quantum.resumed': true, 'quantum.role': 'server' });
  });
});
