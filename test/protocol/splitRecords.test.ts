/**
 * Records that span socket reads, opened where they lie: FrameReader.nextFrame(splitAt) hands a
 * large frame spread over pushed chunks as a SplitFrame (a copied head, views of the rest),
 * RecordLayer.openParts opens it in place, and SessionV2 delivers its data as 'data-parts'.
 */
import { expect } from 'chai';
import { crypto, ErrorCode, QuantumTunnelError } from '../../lib/index.js';
import { CipherSuite, type CipherSuiteId, MAX_RECORD_PLAINTEXT } from '../../lib/protocol/constants.js';
import { encodeFrame, type Frame, FrameReader, type SplitFrame } from '../../lib/protocol/frame.js';
import type { SessionEvent } from '../../lib/protocol/session.js';
import { defaultKemGroup, KEM_GROUPS } from '../../lib/protocol/v2/groups.js';
import { ClientHandshakeV2, ServerHandshakeV2 } from '../../lib/protocol/v2/handshake.js';
import {
  FIRST_APPLICATION_EPOCH,
  InnerType,
  type InnerTypeValue,
  KEY_RECORD_LIMIT,
  RECORD_HEADER_SIZE,
  RECORD_TYPE,
  RecordLayer,
} from '../../lib/protocol/v2/record.js';
import { SessionV2 } from '../../lib/protocol/v2/session.js';
import { plaintextAlert } from '../../lib/protocol/v2/alerts.js';
import { qtError } from '../../lib/errors.js';
import * as testing from '../../lib/testing.js';
import { converse } from '../helpers/handshakes.js';
import { pattern } from '../helpers/tunnel.js';

const SPLIT_AT = 2;
const MIN_SPLIT = 2048;
const MAX_PARTS = 16;
const chacha = crypto.info().chacha20.available;
const SUITES: Array<[string, CipherSuiteId]> = [
  ['AES-256-GCM', CipherSuite.AES_256_GCM],
  ['ChaCha20-Poly1305', CipherSuite.CHACHA20_POLY1305],
];

function isSplit(f: Frame | SplitFrame | null): f is SplitFrame {
  return f !== null && 'parts' in f;
}

/** Reproducible choices below `n`, drawn from the test pattern's bytes for `seed`. */
function rng(seed: number): (n: number) => number {
  const words = pattern(1 << 16, seed);
  let i = 0;
  return (n: number) => {
    i = (i + 4) % words.length;
    return words.readUInt32LE(i) % n;
  };
}

/** `bytes` cut at `cuts` into chunks, each a copy over an ArrayBuffer of its own (as socket reads are). */
function chunksAt(bytes: Uint8Array, cuts: number[]): Buffer[] {
  const bounds = [0, ...cuts, bytes.length];
  return bounds.slice(1).map((end, i) => {
    const c = Buffer.alloc(end - bounds[i]!); // alloc, not allocUnsafe: no shared pool
    c.set(bytes.subarray(bounds[i]!, end));
    return c;
  });
}

/** Whether `view` lies inside one of `chunks`' memory (a view, not a copy). */
function inChunks(view: Uint8Array, chunks: readonly Uint8Array[]): boolean {
  return chunks.some((c) => c.buffer === view.buffer && view.byteOffset >= c.byteOffset && view.byteOffset + view.length <= c.byteOffset + c.length);
}

function readerOf(chunks: readonly Buffer[]): FrameReader {
  const r = new FrameReader();
  for (const c of chunks) r.push(c);
  return r;
}

function expectCode(fn: () => unknown, code: string): void {
  expect(fn).to.throw(QuantumTunnelError).with.property('code', code);
}

const payloadOf = (n: number, seed: number) => pattern(n, seed);

// ---- FrameReader --------------------------------------------------------------------------------

describe('FrameReader.nextFrame(splitAt): frames that span pushed chunks', () => {
  it('a large frame over several chunks: head is the 5-byte header and the first splitAt payload bytes, parts are views of the rest in the chunks', () => {
    const frame = encodeFrame(0x30, payloadOf(5000, 1));
    const chunks = chunksAt(frame, [3000, 4000]);
    const r = readerOf(chunks);
    const f = r.nextFrame(SPLIT_AT);
    expect(isSplit(f)).to.equal(true);
    const s = f as SplitFrame;
    expect(s.type).to.equal(0x30);
    expect(s.head.equals(frame.subarray(0, 5 + SPLIT_AT))).to.equal(true);
    expect(s.parts.map((p) => p.length)).to.deep.equal([3000 - 7, 1000, 1005]);
    expect(Buffer.concat(s.parts).equals(frame.subarray(7))).to.equal(true);
    for (const p of s.parts) expect(inChunks(p, chunks), 'a part is a view of a pushed chunk').to.equal(true);
    expect(s.parts[1]!.buffer).to.equal(chunks[1]!.buffer);
    // A view indeed: writing through it changes the chunk.
    s.parts[2]![0] = s.parts[2]![0]! ^ 0xff;
    expect(chunks[2]![0]).to.equal(frame[4000]! ^ 0xff);
    expect(r.buffered).to.equal(0);
    expect(r.nextFrame(SPLIT_AT)).to.equal(null);
  });

  it('a head that spans chunks (every cut inside the 7 bytes) is gathered; the parts are still views', () => {
    const frame = encodeFrame(0x30, payloadOf(3000, 2));
    for (let cut = 1; cut <= 7; cut++) {
      for (const second of [cut + 1, 8, 100, 2999]) {
        if (second <= cut) continue;
        const chunks = chunksAt(frame, [cut, second]);
        const f = readerOf(chunks).nextFrame(SPLIT_AT);
        expect(isSplit(f), `cuts ${cut}, ${second}`).to.equal(true);
        const s = f as SplitFrame;
        expect(s.head.equals(frame.subarray(0, 7)), `head, cuts ${cut}, ${second}`).to.equal(true);
        expect(Buffer.concat(s.parts).equals(frame.subarray(7)), `parts, cuts ${cut}, ${second}`).to.equal(true);
        expect(s.parts.every((p) => p.length > 0 && inChunks(p, chunks))).to.equal(true);
      }
    }
    // Only the header in the first chunks: [2][5] then the payload.
    const chunks = chunksAt(frame, [2, 5, 7]);
    const s = readerOf(chunks).nextFrame(SPLIT_AT) as SplitFrame;
    expect(s.head.equals(frame.subarray(0, 7))).to.equal(true);
    expect(s.parts).to.have.length(1);
    expect(s.parts[0]!.buffer).to.equal(chunks[3]!.buffer);
  });

  it('a frame inside one chunk, a frame without splitAt, and payloads whose part after the head is under 2,048 bytes come as plain Frames', () => {
    const big = encodeFrame(0x30, payloadOf(4000, 3));
    // In one chunk (with bytes after it): a plain Frame, a view of the chunk.
    const one = Buffer.concat([big, Buffer.from([0x30, 0, 0])]);
    const r1 = readerOf([one]);
    const f1 = r1.nextFrame(SPLIT_AT);
    expect(isSplit(f1)).to.equal(false);
    expect((f1 as Frame).raw.equals(big)).to.equal(true);
    expect(r1.buffered).to.equal(3);
    // Spanning, but no splitAt: one joined copy.
    const chunks = chunksAt(big, [1000]);
    const f2 = readerOf(chunks).nextFrame();
    expect(f2 !== null && !isSplit(f2) && f2.payload.equals(big.subarray(5))).to.equal(true);
    const f3 = readerOf(chunksAt(big, [1000])).nextFrame(undefined);
    expect(isSplit(f3)).to.equal(false);
    // The threshold: payload - splitAt >= 2048 splits, one byte less is a copy.
    for (const [n, split] of [[MIN_SPLIT + SPLIT_AT - 1, false], [MIN_SPLIT + SPLIT_AT, true], [100, false], [0, false]] as const) {
      const frame = encodeFrame(0x30, payloadOf(n, n));
      const cs = chunksAt(frame, [Math.min(6, frame.length - 1)]);
      const f = readerOf(cs).nextFrame(SPLIT_AT);
      expect(isSplit(f), `payload ${n}`).to.equal(split);
      if (!split) {
        const plain = f as Frame;
        expect(plain.raw.equals(frame)).to.equal(true);
        expect(cs.some((c) => c.buffer === plain.raw.buffer), 'a spanning plain frame is a copy').to.equal(false);
      }
    }
    // splitAt counts: with splitAt 100, a 2,147-byte payload is not split, 2,148 is.
    expect(isSplit(readerOf(chunksAt(encodeFrame(0x30, payloadOf(2147, 5)), [50])).nextFrame(100))).to.equal(false);
    const s = readerOf(chunksAt(encodeFrame(0x30, payloadOf(2148, 5)), [50])).nextFrame(100) as SplitFrame;
    expect(s.head).to.have.length(105);
    expect(Buffer.concat(s.parts).length).to.equal(2048);
  });

  it('up to 16 chunks under the parts split; 17 come as one plain (copied) Frame; chunks holding only the head do not count', () => {
    const frame = encodeFrame(0x30, payloadOf(2 + 16 * 200, 4));
    const at = (count: number, headCuts: number[]) => {
      const size = Math.floor((frame.length - 7) / count);
      const cuts = [...headCuts, ...Array.from({ length: count - 1 }, (_, i) => 7 + (i + 1) * size)];
      return chunksAt(frame, cuts);
    };
    for (const [count, headCuts] of [[16, [7]], [16, [3, 7]], [16, []], [15, [1, 2, 3, 4, 5, 6, 7]], [2, [7]]] as Array<[number, number[]]>) {
      const chunks = at(count, headCuts);
      const f = readerOf(chunks).nextFrame(SPLIT_AT);
      expect(isSplit(f), `${count} chunks of parts, head cuts ${headCuts.join(',')}`).to.equal(true);
      expect((f as SplitFrame).parts).to.have.length(count);
      expect(Buffer.concat((f as SplitFrame).parts).equals(frame.subarray(7))).to.equal(true);
    }
    for (const headCuts of [[7], [], [3]]) {
      const chunks = at(17, headCuts);
      const r = readerOf(chunks);
      const f = r.nextFrame(SPLIT_AT);
      expect(isSplit(f), `17 chunks, head cuts ${headCuts.join(',')}`).to.equal(false);
      expect((f as Frame).raw.equals(frame)).to.equal(true);
      expect(r.buffered).to.equal(0);
    }
    // 16 chunks of parts whose first also holds the head's last byte: still 16.
    const shared = chunksAt(frame, [6, ...Array.from({ length: 15 }, (_, i) => 7 + (i + 1) * 200)]);
    expect(shared).to.have.length(17);
    const sf = readerOf(shared).nextFrame(SPLIT_AT);
    expect(isSplit(sf)).to.equal(true);
    expect((sf as SplitFrame).parts).to.have.length(16);
  });

  it('bytes after a split frame stay buffered and parse: the next frames (split, plain, partial) come out exactly', () => {
    const frames = [encodeFrame(0x30, payloadOf(6000, 6)), encodeFrame(0x30, payloadOf(10, 7)), encodeFrame(0x30, payloadOf(3000, 8)), encodeFrame(0x30, payloadOf(2500, 9))];
    const stream = Buffer.concat(frames);
    // Frame 0 ends inside chunk 2, which also holds frame 1 and the start of frame 2.
    const cuts = [2500, 4000, 6100, 8000];
    const chunks = chunksAt(stream, cuts);
    const r = readerOf(chunks.slice(0, 4));
    const f0 = r.nextFrame(SPLIT_AT) as SplitFrame;
    expect(isSplit(f0)).to.equal(true);
    expect(Buffer.concat([f0.head, ...f0.parts]).equals(frames[0]!)).to.equal(true);
    expect(f0.parts[2]!.buffer).to.equal(chunks[2]!.buffer);
    const f1 = r.nextFrame(SPLIT_AT) as Frame;
    expect(isSplit(f1)).to.equal(false);
    expect(f1.raw.equals(frames[1]!)).to.equal(true);
    // Frame 2 is not complete yet: null, and nothing consumed.
    const before = r.buffered;
    expect(r.nextFrame(SPLIT_AT)).to.equal(null);
    expect(r.buffered).to.equal(before);
    r.push(chunks[4]!);
    const f2 = r.nextFrame(SPLIT_AT) as SplitFrame;
    expect(Buffer.concat([f2.head, ...f2.parts]).equals(frames[2]!)).to.equal(true);
    const f3 = r.nextFrame(SPLIT_AT);
    expect(f3 !== null && Buffer.concat(isSplit(f3) ? [f3.head, ...f3.parts] : [f3.raw]).equals(frames[3]!)).to.equal(true);
    expect(r.buffered).to.equal(0);
  });

  it('random chunkings of a stream of frames of every size class give back every frame, byte for byte', () => {
    const next = rng(77);
    const sizes = [0, 1, 2049, 2050, 2051, 4000, 16_384, 65_536, 300, 65_000, 2050, 9000];
    const frames = sizes.map((n, i) => encodeFrame(i % 2 === 0 ? 0x30 : 0x31, payloadOf(n, 100 + i)));
    const stream = Buffer.concat(frames);
    let splits = 0;
    for (let round = 0; round < 40; round++) {
      const maxChunk = [50, 700, 5000, 30_000][round % 4]!;
      const cuts: number[] = [];
      for (let at = 1 + next(maxChunk); at < stream.length; at += 1 + next(maxChunk)) cuts.push(at);
      const chunks = chunksAt(stream, cuts);
      const r = new FrameReader();
      const got: Buffer[] = [];
      for (const c of chunks) {
        r.push(c);
        for (let f = r.nextFrame(SPLIT_AT); f !== null; f = r.nextFrame(SPLIT_AT)) {
          if (isSplit(f)) {
            splits++;
            expect(f.parts.length).to.be.within(1, MAX_PARTS);
            expect(f.parts.every((p) => p.length > 0 && inChunks(p, chunks))).to.equal(true);
            expect(Buffer.concat(f.parts).length).to.be.at.least(MIN_SPLIT);
            got.push(Buffer.concat([f.head, ...f.parts]));
          } else got.push(Buffer.from(f.raw));
        }
      }
      expect(got.length, `round ${round}`).to.equal(frames.length);
      got.forEach((g, i) => expect(g.equals(frames[i]!), `round ${round}, frame ${i}`).to.equal(true));
      expect(r.buffered).to.equal(0);
    }
    expect(splits).to.be.greaterThan(50);
  });

  it('a length over 65,536 is still refused from the header alone', () => {
    const header = Buffer.from([0x30, 0, 1, 0, 1]);
    const r = readerOf([header, Buffer.alloc(3000)]);
    expectCode(() => r.nextFrame(SPLIT_AT), ErrorCode.MESSAGE_TOO_LARGE);
  });
});

// ---- RecordLayer.openParts ----------------------------------------------------------------------

function layers(suite: CipherSuiteId, fill = 9): { tx: RecordLayer; rx: RecordLayer } {
  const secret = testing.secretFromBytes(Buffer.alloc(48, fill));
  const tx = new RecordLayer(suite);
  const rx = new RecordLayer(suite);
  tx.installSend(FIRST_APPLICATION_EPOCH, secret);
  rx.installReceive(FIRST_APPLICATION_EPOCH, secret);
  secret.destroy();
  return { tx, rx };
}

/** A record's bytes as a SplitFrame, cut at `cuts` (offsets into the record). */
function splitOf(record: Buffer, cuts: number[]): { frame: SplitFrame; chunks: Buffer[] } {
  const chunks = chunksAt(record, cuts);
  const f = readerOf(chunks).nextFrame(SPLIT_AT);
  expect(isSplit(f), `record of ${record.length} bytes cut at ${cuts.join(',')}`).to.equal(true);
  return { frame: f as SplitFrame, chunks };
}

describe('RecordLayer.openParts', () => {
  for (const [name, suite] of SUITES) {
    const it_ = suite === CipherSuite.CHACHA20_POLY1305 && !chacha ? it.skip : it;

    it_(`${name}: data records of random sizes cut at random points open to their content, as views of the chunks, none empty; open and openParts interleave`, () => {
      const { tx, rx } = layers(suite);
      const next = rng(suite * 31);
      for (let i = 0; i < 60; i++) {
        const n = i === 0 ? MAX_RECORD_PLAINTEXT : MIN_SPLIT + next(MAX_RECORD_PLAINTEXT - MIN_SPLIT);
        const content = payloadOf(n, i);
        const record = tx.sealData([content]);
        if (i % 5 === 4) {
          // A record in one read goes through open(); the sequence stays shared.
          const f = readerOf([Buffer.from(record)]).nextFrame(SPLIT_AT) as Frame;
          expect(rx.open(f).content.equals(content)).to.equal(true);
          continue;
        }
        const count = 1 + next(MAX_PARTS - 1); // 16 chunks at most: 15 cuts
        const cuts = new Set<number>();
        while (cuts.size < count) cuts.add(1 + next(record.length - 1));
        const chunks = chunksAt(record, [...cuts].sort((a, b) => a - b));
        const f = readerOf(chunks).nextFrame(SPLIT_AT);
        if (!isSplit(f)) {
          // The 7-byte head may hold every cut (then it is one part); still a split.
          expect.fail(`record ${i} did not split (cuts ${[...cuts].join(',')})`);
        }
        const opened = rx.openParts(f);
        expect(opened.type).to.equal(InnerType.DATA);
        expect(opened.epoch).to.equal(FIRST_APPLICATION_EPOCH);
        expect(opened.parts.every((p) => p.length > 0), 'no empty part').to.equal(true);
        expect(opened.parts.every((p) => inChunks(p, chunks)), 'views of the chunks').to.equal(true);
        expect(Buffer.concat(opened.parts).equals(content), `record ${i}`).to.equal(true);
      }
      expect(rx.receiveKey!.seq).to.equal(60);
      expect(rx.receiveKey!.records).to.equal(60);
      tx.destroy();
      rx.destroy();
    });
  }

  it('padding zeros that span parts, content with zeros of its own at its end, and the type byte alone in its part', () => {
    const { tx, rx } = layers(CipherSuite.AES_256_GCM);
    const content = Buffer.concat([payloadOf(2500, 11).map((b) => b | 1), Buffer.alloc(300)]); // ends with 300 zeros
    const padding = 5000;
    const H = RECORD_HEADER_SIZE;
    const typeAt = H + content.length; // offset of the type byte in the record
    const cases: Array<[string, number[]]> = [
      ['type byte alone in the last plaintext part, padding in the following parts', [typeAt, typeAt + 1, typeAt + 2000, typeAt + 4000]],
      ['type byte alone, no padding after it in its part', [typeAt, typeAt + 1]],
      ['content ends exactly at a part end, zeros of the content in the part before', [H + 2500, typeAt]],
      ['type byte first in a part of padding, padding across five parts and into the tag part', [H + 100, typeAt, typeAt + 1000, typeAt + 2000, typeAt + 3000, typeAt + padding - 3]],
      ['type byte last in its part, every later part only zeros', [typeAt + 1, typeAt + 2, typeAt + 3, typeAt + padding + 1]],
      ['the content zeros split across parts', [H + 2600, H + 2700, typeAt + 1]],
    ];
    for (const [what, cuts] of cases) {
      const record = tx.seal(InnerType.DATA, content, padding);
      const { frame, chunks } = splitOf(record, cuts);
      const opened = rx.openParts(frame);
      expect(opened.type, what).to.equal(InnerType.DATA);
      expect(opened.parts.every((p) => p.length > 0), `${what}: no empty part`).to.equal(true);
      expect(opened.parts.every((p) => inChunks(p, chunks)), `${what}: views`).to.equal(true);
      expect(Buffer.concat(opened.parts).equals(content), what).to.equal(true);
    }
    // A control record with empty content and padding over parts: its type, no parts at all.
    const ping = tx.seal(InnerType.PING, Buffer.alloc(0), 4000);
    const opened = rx.openParts(splitOf(ping, [H + 1, H + 1000, H + 3000]).frame);
    expect(opened.type).to.equal(InnerType.PING);
    expect(opened.parts).to.deep.equal([]);
    // A key-update-sized control record with content: joined content equals it.
    const ticket = payloadOf(3000, 12);
    const t = rx.openParts(splitOf(tx.seal(InnerType.NEW_SESSION_TICKET, ticket, 10), [H + 1500, H + 3001]).frame);
    expect(t.type).to.equal(InnerType.NEW_SESSION_TICKET);
    expect(Buffer.concat(t.parts).equals(ticket)).to.equal(true);
    // No type at all (only zeros), or an unknown type: UNEXPECTED_MESSAGE, as open() says.
    expectCode(() => rx.openParts(splitOf(tx.seal(0 as InnerTypeValue, Buffer.alloc(2500), 100), [H + 1000, H + 2000]).frame), ErrorCode.UNEXPECTED_MESSAGE);
    expectCode(() => rx.openParts(splitOf(tx.seal(0x0a as InnerTypeValue, Buffer.alloc(2500, 1), 0), [H + 1000]).frame), ErrorCode.UNEXPECTED_MESSAGE);
    tx.destroy();
    rx.destroy();
  });

  it('a KeyUpdate epoch switch through openParts: old-epoch records open until the first new-epoch one, which retires the old key', () => {
    const { tx, rx } = layers(CipherSuite.AES_256_GCM);
    const next = testing.secretFromBytes(Buffer.alloc(48, 0x3c));
    rx.installNextReceive(FIRST_APPLICATION_EPOCH + 1, next);
    expect(rx.receiveSwitchPending).to.equal(true);
    const old = payloadOf(4000, 20);
    const o = rx.openParts(splitOf(tx.sealData([old]), [1000]).frame);
    expect(o.epoch).to.equal(FIRST_APPLICATION_EPOCH);
    expect(Buffer.concat(o.parts).equals(old)).to.equal(true);
    expect(rx.receiveSwitchPending, 'an old-epoch record does not switch').to.equal(true);
    const stale = tx.sealData([old]); // still epoch 2, seq 1: sent, but after the switch
    tx.installSend(FIRST_APPLICATION_EPOCH + 1, next);
    const fresh = payloadOf(5000, 21);
    const f = rx.openParts(splitOf(tx.sealData([fresh]), [2000, 3000]).frame);
    expect(f.epoch).to.equal(FIRST_APPLICATION_EPOCH + 1);
    expect(Buffer.concat(f.parts).equals(fresh)).to.equal(true);
    expect(rx.receiveSwitchPending).to.equal(false);
    expect(rx.receiveKey!.epoch).to.equal(FIRST_APPLICATION_EPOCH + 1);
    expect(rx.receiveKey!.seq).to.equal(1);
    // The old epoch is gone: its next record is refused before any decryption.
    const { frame: late, chunks } = splitOf(stale, [3000]);
    expectCode(() => rx.openParts(late), ErrorCode.UNEXPECTED_MESSAGE);
    expect(Buffer.concat(chunks).equals(stale), 'nothing decrypted').to.equal(true);
    // A record of an epoch never announced is refused the same way.
    const bogus = Buffer.from(tx.sealData([fresh]));
    bogus.writeUInt16BE(9, 5);
    expectCode(() => rx.openParts(splitOf(bogus, [3000]).frame), ErrorCode.UNEXPECTED_MESSAGE);
    next.destroy();
    tx.destroy();
    rx.destroy();
  });

  it('a replayed, reordered, dropped or tampered split record fails authentication and its decrypted bytes are wiped; frame type and head are checked', () => {
    for (const attack of ['replay', 'reorder', 'tamper-ct', 'tamper-tag', 'tamper-head'] as const) {
      const { tx, rx } = layers(CipherSuite.AES_256_GCM);
      const contents = [0, 1, 2].map((i) => Buffer.from(payloadOf(3000 + i, 30 + i).map((b) => b | 1)));
      const records = contents.map((c) => tx.sealData([c]));
      const openOk = (i: number) => expect(Buffer.concat(rx.openParts(splitOf(Buffer.from(records[i]!), [1500]).frame).parts).equals(contents[i]!)).to.equal(true);
      openOk(0);
      let bad: Buffer;
      if (attack === 'replay') bad = Buffer.from(records[0]!);
      else if (attack === 'reorder') bad = Buffer.from(records[2]!);
      else {
        bad = Buffer.from(records[1]!);
        const at = attack === 'tamper-ct' ? 2000 : attack === 'tamper-tag' ? bad.length - 1 : 1;
        bad[at]! ^= 0x01;
      }
      if (attack === 'tamper-head') {
        // The frame type byte: not a record at all.
        bad = Buffer.from(records[1]!);
        bad[0] = 0x31;
        expectCode(() => rx.openParts(splitOf(bad, [1500]).frame), ErrorCode.UNEXPECTED_MESSAGE);
        // And a head of the wrong size is refused as an argument.
        const { frame } = splitOf(Buffer.from(records[1]!), [1500]);
        expectCode(() => rx.openParts({ ...frame, head: frame.head.subarray(0, 6) }), ErrorCode.INVALID_ARGUMENT);
        openOk(1);
        continue;
      }
      const { frame, chunks } = splitOf(bad, [1500, 2500]);
      expectCode(() => rx.openParts(frame), ErrorCode.AUTHENTICATION_FAILED);
      const after = Buffer.concat(chunks);
      const body = bad.length - RECORD_HEADER_SIZE - 16;
      expect(after.subarray(RECORD_HEADER_SIZE, RECORD_HEADER_SIZE + body).every((b) => b === 0), `${attack}: wiped`).to.equal(true);
      expect(rx.receiveKey!.seq, `${attack}: the failed record did not count`).to.equal(1);
      tx.destroy();
      rx.destroy();
    }
  });

  it('the AD is the head: a record header changed in transit (same length) does not open; usage limits apply as in open()', () => {
    const { tx, rx } = layers(CipherSuite.AES_256_GCM);
    const content = payloadOf(3000, 40);
    const record = tx.sealData([content]);
    const { frame } = splitOf(Buffer.from(record), [2000]);
    // The length field in the head (not used to frame the parts) is authenticated.
    const head = Buffer.from(frame.head);
    head[4]! ^= 1;
    const saved = frame.parts.map((p) => Buffer.from(p));
    expectCode(() => rx.openParts({ ...frame, head }), ErrorCode.AUTHENTICATION_FAILED);
    frame.parts.forEach((p, i) => saved[i]!.copy(p));
    const { tx: tx1, rx: rx1 } = layers(CipherSuite.AES_256_GCM);
    const c1 = tx1.sealData([content]);
    expect(Buffer.concat(rx1.openParts(splitOf(c1, [2000]).frame).parts).equals(content)).to.equal(true);
    tx1.destroy();
    rx1.destroy();
    // The receiver at its record limit refuses the next record before decrypting it.
    rx.receiveKey!.records = KEY_RECORD_LIMIT;
    const r2 = tx.sealData([content]);
    const { frame: f2, chunks } = splitOf(Buffer.from(r2), [2000]);
    expectCode(() => rx.openParts(f2), ErrorCode.SEQUENCE_EXHAUSTED);
    expect(Buffer.concat(chunks).equals(r2)).to.equal(true);
    // Bytes counted like open(): the content length.
    const { tx: t2, rx: r } = layers(CipherSuite.AES_256_GCM, 5);
    r.openParts(splitOf(t2.sealData([content]), [500]).frame);
    expect(r.receiveKey!.bytes).to.equal(content.length);
    r.destroy();
    t2.destroy();
    rx.destroy();
    // A destroyed layer refuses it as open() does.
    expectCode(() => rx.open(readerOf([Buffer.from(record)]).nextFrame() as Frame), ErrorCode.TUNNEL_CLOSED);
    expectCode(() => rx.openParts(frame), ErrorCode.TUNNEL_CLOSED);
    tx.destroy();
  });
});

// ---- SessionV2 ---------------------------------------------------------------------------------

async function sessions(): Promise<{ c: SessionV2; s: SessionV2 }> {
  const groups = [defaultKemGroup()];
  const ch = new ClientHandshakeV2({ cipherSuites: [CipherSuite.AES_256_GCM], groups });
  const sh = new ServerHandshakeV2({ cipherSuites: [CipherSuite.AES_256_GCM], groups: KEM_GROUPS });
  const [cr, sr] = await converse(ch, sh);
  return { c: new SessionV2(cr), s: new SessionV2(sr) };
}

describe('SessionV2: split records', () => {
  it('splits after the epoch (splitAt 2); a data record that spans reads is a data-parts event of views, counted in stats; a small one is data', async () => {
    const { c, s } = await sessions();
    expect(s.splitAt).to.equal(SPLIT_AT);
    const content = payloadOf(40_000, 50);
    const bytes = Buffer.concat([c.sealData([content, Buffer.from('small')]), c.pingFrame()]);
    const r = new FrameReader();
    const chunks = chunksAt(bytes, [1000, 20_000, 39_000]);
    const events: SessionEvent[] = [];
    for (const ch of chunks) {
      r.push(ch);
      for (let f = r.nextFrame(s.splitAt); f !== null; f = r.nextFrame(s.splitAt)) events.push(s.receive(f));
    }
    expect(events.map((e) => e.kind)).to.deep.equal(['data-parts', 'data', 'ping']);
    const e0 = events[0]!;
    if (e0.kind !== 'data-parts') throw new Error('unreachable');
    expect(e0.parts.length).to.equal(4);
    expect(e0.parts.every((p) => p.length > 0 && inChunks(p, chunks))).to.equal(true);
    expect(Buffer.concat(e0.parts).equals(content)).to.equal(true);
    expect(events[1]!.kind === 'data' && events[1]!.data.toString()).to.equal('small');
    expect(s.stats.recordsReceived).to.equal(2);
    expect(s.stats.bytesReceived).to.equal(content.length + 5);
    // A forged split record is fatal with ERR_QT_AUTHENTICATION_FAILED.
    const forged = Buffer.from(c.sealData([content]));
    forged[30_000]! ^= 0x80;
    const fr = readerOf(chunksAt(forged, [20_000])).nextFrame(s.splitAt);
    expect(isSplit(fr)).to.equal(true);
    expectCode(() => s.receive(fr!), ErrorCode.AUTHENTICATION_FAILED);
    c.destroy();
    s.destroy();
  });

  it("a server's plaintext Alert before its first record names the same error whether it came in one read or across reads", async () => {
    // The alert our server sends when it refuses a PSK, followed by bytes an Alert does not use
    // (decodeAlert reads the level, code and description and ignores the rest): a peer's long
    // alert is read the same way however TCP cut it.
    const alert = plaintextAlert(qtError(ErrorCode.PSK_MISMATCH, 'refused'));
    const long = encodeFrame(alert[0]!, Buffer.concat([alert.subarray(5), Buffer.alloc(3000)]));
    const outcome = async (cuts: number[]) => {
      const { c, s } = await sessions();
      const f = readerOf(chunksAt(long, cuts)).nextFrame(c.splitAt)!;
      let code: string | undefined;
      try {
        c.receive(f);
      } catch (err) {
        code = (err as QuantumTunnelError).code;
      }
      c.destroy();
      s.destroy();
      return { split: isSplit(f), code };
    };
    expect(await outcome([])).to.deep.equal({ split: false, code: ErrorCode.PSK_MISMATCH });
    expect(await outcome([1500])).to.deep.equal({ split: true, code: ErrorCode.PSK_MISMATCH });
    expect(await outcome([3, 10, 2000])).to.deep.equal({ split: true, code: ErrorCode.PSK_MISMATCH });
  });

  it('a split frame of another type where a record belongs: UNEXPECTED_MESSAGE', async () => {
    const { c, s } = await sessions();
    // The server's first record reaches the client so that an Alert frame is no longer the plaintext kind.
    const data = c.sealData([Buffer.from('x')]);
    const ev = readerOf([Buffer.from(data)]).nextFrame(s.splitAt)!;
    expect(s.receive(ev).kind).to.equal('data');
    const f = readerOf(chunksAt(encodeFrame(0x31, payloadOf(3000, 60)), [1000])).nextFrame(s.splitAt);
    expect(isSplit(f)).to.equal(true);
    expectCode(() => s.receive(f!), ErrorCode.UNEXPECTED_MESSAGE);
    expect(RECORD_TYPE).to.equal(0x30);
    c.destroy();
    s.destroy();
  });
});
