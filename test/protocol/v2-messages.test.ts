/** Protocol v2 hellos (docs/PROTOCOL.md §3): round trips and hostile encodings. */
import { expect } from 'chai';
import { ErrorCode, QuantumTunnelError } from '../../lib/index.js';
import { MessageType } from '../../lib/protocol/constants.js';
import { FrameReader } from '../../lib/protocol/frame.js';
import {
  type ClientHelloV2,
  decodeClientHelloV2,
  decodeServerHelloV2,
  encodeClientHelloV2,
  encodeServerHelloV2,
  NO_PSK,
  type ServerHelloV2,
  truncatedClientHello,
  V2_VERSION_NUMBER,
} from '../../lib/protocol/v2/messages.js';

function payloadOf(frame: Buffer): Buffer {
  const r = new FrameReader();
  r.push(frame);
  return r.nextFrame()!.payload;
}

const clientHello: ClientHelloV2 = {
  random: Buffer.alloc(32, 0xaa),
  supportedVersions: [V2_VERSION_NUMBER],
  cipherSuites: [1, 2],
  groups: [0x0101, 0x0102],
  keyShareGroup: 0x0101,
  keyShare: Buffer.alloc(1600, 0x11),
  pskIdentities: [{ identity: Buffer.from('client-a'), obfuscatedTicketAge: 0 }],
  extensions: [{ type: 7, data: Buffer.from([1, 2, 3]) }],
  binders: [Buffer.alloc(48, 0xbb)],
};

const serverHello: ServerHelloV2 = {
  random: Buffer.alloc(32, 0xcc),
  cipherSuite: 1,
  group: 0x0101,
  keyShare: Buffer.alloc(1600, 0x22),
  selectedPsk: NO_PSK,
  extensions: [],
};

function expectMalformed(fn: () => unknown, what: string): void {
  expect(fn, what).to.throw(QuantumTunnelError).with.property('code', ErrorCode.MALFORMED_MESSAGE);
}

describe('protocol v2: hello codecs', () => {
  it('ClientHello round-trips in a v1 frame (type 0x01) with version bytes 02 00', () => {
    const frame = encodeClientHelloV2(clientHello);
    expect(frame[0]).to.equal(MessageType.CLIENT_HELLO);
    const payload = payloadOf(frame);
    expect([payload[0], payload[1]]).to.deep.equal([2, 0]);
    expect(decodeClientHelloV2(payload)).to.deep.equal(clientHello);
  });

  it('ServerHello round-trips', () => {
    const frame = encodeServerHelloV2(serverHello);
    expect(frame[0]).to.equal(MessageType.SERVER_HELLO);
    expect(decodeServerHelloV2(payloadOf(frame))).to.deep.equal(serverHello);
  });

  it('the truncated ClientHello is the frame up to its binders, with the full frame length', () => {
    const frame = encodeClientHelloV2(clientHello);
    const truncated = truncatedClientHello(clientHello);
    const bindersLength = 2 + 1 + 48;
    expect(truncated.equals(frame.subarray(0, frame.length - bindersLength))).to.equal(true);
    expect(truncated.readUInt32BE(1)).to.equal(frame.length - 5);
  });

  it('every truncation of either hello is malformed, never an exception of another kind', () => {
    for (const [payload, decode] of [
      [payloadOf(encodeClientHelloV2(clientHello)), decodeClientHelloV2],
      [payloadOf(encodeServerHelloV2(serverHello)), decodeServerHelloV2],
    ] as const) {
      for (let n = 0; n < payload.length; n++) expectMalformed(() => decode(payload.subarray(0, n)), `cut at ${n}`);
    }
  });

  it('trailing bytes, empty offers, duplicate extensions, a binder count that does not match and version 1 are malformed', () => {
    const payload = payloadOf(encodeClientHelloV2(clientHello));
    expectMalformed(() => decodeClientHelloV2(Buffer.concat([payload, Buffer.of(0)])), 'trailing byte');
    for (const empty of [{ supportedVersions: [] }, { cipherSuites: [] }, { groups: [] }]) {
      expectMalformed(() => decodeClientHelloV2(payloadOf(encodeClientHelloV2({ ...clientHello, ...empty }))), JSON.stringify(empty));
    }
    const twice = { ...clientHello, extensions: [{ type: 7, data: Buffer.alloc(0) }, { type: 7, data: Buffer.alloc(1) }] };
    expectMalformed(() => decodeClientHelloV2(payloadOf(encodeClientHelloV2(twice))), 'duplicate extension');
    const noBinder = Buffer.from(payload);
    noBinder.writeUInt16BE(0, payload.length - 51); // the binders list now claims to be empty
    expectMalformed(() => decodeClientHelloV2(noBinder), 'binders');
    const v1 = Buffer.from(payload);
    v1[0] = 1;
    expectMalformed(() => decodeClientHelloV2(v1), 'version 1');
  });

  it('encoders refuse what does not fit: a wrong random, a binder missing, a field over its length prefix', () => {
    const refuse = (fn: () => unknown) => expect(fn).to.throw(QuantumTunnelError).with.property('code', ErrorCode.INVALID_ARGUMENT);
    refuse(() => encodeClientHelloV2({ ...clientHello, random: Buffer.alloc(31) }));
    refuse(() => encodeClientHelloV2({ ...clientHello, binders: [] }));
    refuse(() => encodeClientHelloV2({ ...clientHello, binders: [Buffer.alloc(256)] }));
    refuse(() => encodeServerHelloV2({ ...serverHello, keyShare: Buffer.alloc(65_536) }));
  });
});
