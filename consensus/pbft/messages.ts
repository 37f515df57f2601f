// Byte encodings of the replica's messages and persisted records, and the exact bytes each
// signature covers. Decoding is strict: a known version and type, every length bounded, integers
// safe, signer lists ascending, nothing left over; anything else is an error, never a throw.
import { commitMessage } from '../chain/header.ts';
import { concatBytes, sha256, toHex, utf8 } from '../crypto/encoding.ts';
import type { CommitCertificate, Hash, Limits, Message, NewView, PersistRecord, PreparedCert, Reproposal, ViewChange } from './types.ts';
import { DEFAULT_LIMITS } from './types.ts';

const VERSION = 1;
const TYPE_CODES = { 'pre-prepare': 1, prepare: 2, precommit: 3, commit: 4, 'view-change': 5, 'new-view': 6, certificate: 7 } as const;
const RECORD_CODES = { view: 1, 'new-view': 2, prepare: 3, precommit: 4, prepared: 5, decided: 6 } as const;

export class DecodeError extends Error {}

// ---------------------------------------------------------------------------------------------
// Writer / Reader

class Writer {
  private buf = new Uint8Array(256);
  private len = 0;

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }
  u8(v: number): void {
    this.reserve(1);
    this.buf[this.len++] = v;
  }
  u16(v: number): void {
    this.reserve(2);
    this.buf[this.len++] = v >>> 8;
    this.buf[this.len++] = v & 0xff;
  }
  u32(v: number): void {
    this.reserve(4);
    const b = this.buf;
    b[this.len++] = v >>> 24;
    b[this.len++] = (v >>> 16) & 0xff;
    b[this.len++] = (v >>> 8) & 0xff;
    b[this.len++] = v & 0xff;
  }
  /** a non-negative safe integer as 8 bytes big-endian */
  u64(v: number): void {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`not a u64: ${v}`);
    this.u32(Math.floor(v / 2 ** 32));
    this.u32(v % 2 ** 32);
  }
  raw(bytes: Uint8Array): void {
    this.reserve(bytes.length);
    this.buf.set(bytes, this.len);
    this.len += bytes.length;
  }
  hash(h: Hash): void {
    this.raw(hashBytes(h));
  }
  /** bytes with a 1-byte length (signatures) */
  short(bytes: Uint8Array): void {
    if (bytes.length > 255) throw new RangeError('short bytes over 255');
    this.u8(bytes.length);
    this.raw(bytes);
  }
  /** bytes with a 4-byte length (payloads) */
  long(bytes: Uint8Array): void {
    this.u32(bytes.length);
    this.raw(bytes);
  }
  done(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

class Reader {
  private pos = 0;
  constructor(
    private readonly bytes: Uint8Array,
    readonly limits: Limits,
  ) {}

  private need(n: number): void {
    if (this.pos + n > this.bytes.length) throw new DecodeError('truncated');
  }
  u8(): number {
    this.need(1);
    return this.bytes[this.pos++]!;
  }
  u16(): number {
    this.need(2);
    const v = (this.bytes[this.pos]! << 8) | this.bytes[this.pos + 1]!;
    this.pos += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const b = this.bytes;
    const p = this.pos;
    this.pos += 4;
    return ((b[p]! << 24) >>> 0) + (b[p + 1]! << 16) + (b[p + 2]! << 8) + b[p + 3]!;
  }
  u64(): number {
    const hi = this.u32();
    const lo = this.u32();
    const v = hi * 2 ** 32 + lo;
    if (!Number.isSafeInteger(v)) throw new DecodeError('integer over 2^53');
    return v;
  }
  raw(n: number): Uint8Array {
    this.need(n);
    const out = this.bytes.slice(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  hash(): Hash {
    return '0x' + toHex(this.raw(32));
  }
  sig(): Uint8Array {
    const n = this.u8();
    if (n === 0 || n > this.limits.maxSignatureBytes) throw new DecodeError('bad signature length');
    return this.raw(n);
  }
  payload(): Uint8Array {
    const n = this.u32();
    if (n > this.limits.maxPayloadBytes) throw new DecodeError('payload over the limit');
    return this.raw(n);
  }
  bool(): boolean {
    const b = this.u8();
    if (b > 1) throw new DecodeError('bad flag');
    return b === 1;
  }
  end(): void {
    if (this.pos !== this.bytes.length) throw new DecodeError('trailing bytes');
  }
}

export function hashBytes(h: Hash): Uint8Array {
  if (typeof h !== 'string' || !/^0x[0-9a-f]{64}$/.test(h)) throw new TypeError(`not a 32-byte 0x hash: ${String(h)}`);
  return Buffer.from(h.slice(2), 'hex');
}

// ---------------------------------------------------------------------------------------------
// Shared parts

function writeSigners(w: Writer, signers: number[]): void {
  w.u16(signers.length);
  for (const s of signers) w.u32(s);
}

function readSigners(r: Reader): number[] {
  const n = r.u16();
  if (n === 0 || n > r.limits.maxSigners) throw new DecodeError('bad signer count');
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const s = r.u32();
    if (i > 0 && s <= out[i - 1]!) throw new DecodeError('signers not strictly ascending');
    out.push(s);
  }
  return out;
}

function writeCert(w: Writer, c: CommitCertificate): void {
  w.u64(c.number);
  w.hash(c.blockHash);
  w.u64(c.view);
  writeSigners(w, c.signers);
  const sig = c.aggregateSignature;
  if (!/^0x([0-9a-f]{2})+$/.test(sig)) throw new TypeError('aggregateSignature is not 0x hex');
  w.short(Buffer.from(sig.slice(2), 'hex'));
}

function readCert(r: Reader): CommitCertificate {
  const number = r.u64();
  if (number < 1) throw new DecodeError('certificate for height 0');
  const blockHash = r.hash();
  const view = r.u64();
  const signers = readSigners(r);
  const aggregateSignature = '0x' + toHex(r.sig());
  return { number, blockHash, view, signers, aggregateSignature };
}

function writePrepared(w: Writer, p: PreparedCert, withPayload: boolean): void {
  w.u64(p.view);
  w.u64(p.height);
  w.hash(p.hash);
  w.hash(p.parentHash);
  w.hash(p.digest);
  writeSigners(w, p.signers);
  w.short(p.aggregate);
  if (withPayload && p.payload) {
    w.u8(1);
    w.long(p.payload);
  } else w.u8(0);
}

function readPrepared(r: Reader): PreparedCert {
  const view = r.u64();
  const height = r.u64();
  if (height < 1) throw new DecodeError('prepared certificate for height 0');
  const hash = r.hash();
  const parentHash = r.hash();
  const digest = r.hash();
  const signers = readSigners(r);
  const aggregate = r.sig();
  const payload = r.bool() ? r.payload() : null;
  return { view, height, hash, parentHash, digest, signers, aggregate, payload };
}

function writeViewChangeBody(w: Writer, m: ViewChange, withPayloads: boolean): void {
  w.u64(m.view);
  w.u32(m.replica);
  w.u64(m.committedHeight);
  w.hash(m.committedHash);
  if (m.committedCert) {
    w.u8(1);
    writeCert(w, m.committedCert);
  } else w.u8(0);
  w.u16(m.prepared.length);
  for (const p of m.prepared) writePrepared(w, p, withPayloads);
}

function readViewChange(r: Reader): ViewChange {
  const view = r.u64();
  if (view < 1) throw new DecodeError('view change to view 0');
  const replica = r.u32();
  const committedHeight = r.u64();
  const committedHash = r.hash();
  const committedCert = r.bool() ? readCert(r) : null;
  if ((committedCert === null) !== (committedHeight === 0)) throw new DecodeError('a committed certificate comes exactly with a height above 0');
  const n = r.u16();
  if (n > r.limits.maxPrepared) throw new DecodeError('too many prepared certificates');
  const prepared: PreparedCert[] = [];
  for (let i = 0; i < n; i++) {
    const p = readPrepared(r);
    const prev = i === 0 ? committedHeight : prepared[i - 1]!.height;
    if (p.height <= prev) throw new DecodeError('prepared certificates not ascending above the committed height');
    if (p.view >= view) throw new DecodeError('prepared certificate not from an earlier view');
    prepared.push(p);
  }
  const sig = r.sig();
  return { type: 'view-change', view, replica, committedHeight, committedHash, committedCert, prepared, sig };
}

// ---------------------------------------------------------------------------------------------
// Messages

export function encodeMessage(m: Message): Uint8Array {
  const w = new Writer();
  w.u8(VERSION);
  w.u8(TYPE_CODES[m.type]);
  switch (m.type) {
    case 'pre-prepare':
      w.u64(m.view);
      w.u64(m.height);
      w.hash(m.hash);
      w.hash(m.parentHash);
      w.long(m.payload);
      w.short(m.sig);
      break;
    case 'prepare':
      w.u64(m.view);
      w.u64(m.height);
      w.hash(m.hash);
      w.hash(m.digest);
      w.short(m.sig);
      break;
    case 'precommit':
      w.u64(m.view);
      w.u64(m.height);
      w.hash(m.hash);
      break;
    case 'commit':
      w.u64(m.height);
      w.hash(m.hash);
      w.short(m.sig);
      break;
    case 'view-change':
      writeViewChangeBody(w, m, true);
      w.short(m.sig);
      break;
    case 'new-view':
      writeNewViewBody(w, m);
      w.short(m.sig);
      break;
    case 'certificate':
      writeCert(w, m.certificate);
      break;
  }
  return w.done();
}

function writeNewViewBody(w: Writer, m: NewView): void {
  w.u64(m.view);
  w.u16(m.viewChanges.length);
  for (const vc of m.viewChanges) {
    writeViewChangeBody(w, vc, false);
    w.short(vc.sig);
  }
  w.u16(m.reproposals.length);
  for (const rp of m.reproposals) {
    w.u64(rp.height);
    w.hash(rp.hash);
    w.hash(rp.parentHash);
    w.long(rp.payload);
  }
}

export type DecodeResult = { ok: true; msg: Message } | { ok: false; error: string };

export function decodeMessage(bytes: Uint8Array, limits: Limits = DEFAULT_LIMITS): DecodeResult {
  try {
    if (!(bytes instanceof Uint8Array)) throw new DecodeError('not bytes');
    if (bytes.length > limits.maxMessageBytes) throw new DecodeError('message over the size limit');
    const r = new Reader(bytes, limits);
    if (r.u8() !== VERSION) throw new DecodeError('unknown version');
    const msg = readBody(r, r.u8());
    r.end();
    return { ok: true, msg };
  } catch (err) {
    if (err instanceof DecodeError) return { ok: false, error: err.message };
    return { ok: false, error: `undecodable: ${(err as Error).message}` };
  }
}

function readHeightView(r: Reader): { view: number; height: number } {
  const view = r.u64();
  const height = r.u64();
  if (height < 1) throw new DecodeError('height 0');
  return { view, height };
}

function readBody(r: Reader, type: number): Message {
  switch (type) {
    case 1: {
      const { view, height } = readHeightView(r);
      const hash = r.hash();
      const parentHash = r.hash();
      const payload = r.payload();
      const sig = r.sig();
      return { type: 'pre-prepare', view, height, hash, parentHash, payload, sig };
    }
    case 2: {
      const { view, height } = readHeightView(r);
      const hash = r.hash();
      const digest = r.hash();
      const sig = r.sig();
      return { type: 'prepare', view, height, hash, digest, sig };
    }
    case 3: {
      const { view, height } = readHeightView(r);
      return { type: 'precommit', view, height, hash: r.hash() };
    }
    case 4: {
      const height = r.u64();
      if (height < 1) throw new DecodeError('height 0');
      const hash = r.hash();
      const sig = r.sig();
      return { type: 'commit', height, hash, sig };
    }
    case 5:
      return readViewChange(r);
    case 6: {
      const view = r.u64();
      if (view < 1) throw new DecodeError('new view 0');
      const nvc = r.u16();
      if (nvc === 0 || nvc > r.limits.maxViewChanges) throw new DecodeError('bad view-change count');
      const viewChanges: ViewChange[] = [];
      for (let i = 0; i < nvc; i++) {
        const vc = readViewChange(r);
        if (vc.prepared.some((p) => p.payload !== null)) throw new DecodeError('payload inside a new view\'s view change');
        if (i > 0 && vc.replica <= viewChanges[i - 1]!.replica) throw new DecodeError('view changes not ascending by replica');
        viewChanges.push(vc);
      }
      const nrp = r.u16();
      if (nrp > r.limits.maxPrepared) throw new DecodeError('too many reproposals');
      const reproposals: Reproposal[] = [];
      for (let i = 0; i < nrp; i++) {
        const height = r.u64();
        if (height < 1 || (i > 0 && height !== reproposals[i - 1]!.height + 1)) throw new DecodeError('reproposal heights not consecutive');
        reproposals.push({ height, hash: r.hash(), parentHash: r.hash(), payload: r.payload() });
      }
      const sig = r.sig();
      return { type: 'new-view', view, viewChanges, reproposals, sig };
    }
    case 7:
      return { type: 'certificate', certificate: readCert(r) };
    default:
      throw new DecodeError(`unknown message type ${type}`);
  }
}

// ---------------------------------------------------------------------------------------------
// What each signature covers. View-bound votes are bound to the chain; COMMIT is chain.md's.

const enc = (s: string) => utf8(s);
const D_PREPARE = enc('goodness/pbft/prepare/v1');
const D_VIEW_CHANGE = enc('goodness/pbft/view-change/v1');
const D_NEW_VIEW = enc('goodness/pbft/new-view/v1');
const D_CONTENT = enc('goodness/pbft/content/v1');

export function chainDigest(chain: string): Uint8Array {
  return sha256(utf8(chain));
}

function u64Bytes(v: number): Uint8Array {
  const w = new Writer();
  w.u64(v);
  return w.done();
}

/** Binds a block's parent and payload: what a PREPARE vouches for besides the hash. */
export function contentDigest(parentHash: Hash, payload: Uint8Array): Hash {
  return '0x' + toHex(sha256(concatBytes(D_CONTENT, hashBytes(parentHash), payload)));
}

export function prepareSigningBytes(chain: Uint8Array, view: number, height: number, hash: Hash, digest: Hash): Uint8Array {
  return sha256(concatBytes(D_PREPARE, chain, u64Bytes(view), u64Bytes(height), hashBytes(hash), hashBytes(digest)));
}

/** chain.md: SHA-256("goodness/commit/v1" || blockHash). */
export function commitSigningBytes(hash: Hash): Uint8Array {
  return commitMessage(hashBytes(hash));
}

/** Covers the body with payloads stripped: the digests in it bind them. */
export function viewChangeSigningBytes(chain: Uint8Array, m: ViewChange): Uint8Array {
  const w = new Writer();
  writeViewChangeBody(w, m, false);
  return sha256(concatBytes(D_VIEW_CHANGE, chain, w.done()));
}

export function newViewSigningBytes(chain: Uint8Array, m: NewView): Uint8Array {
  const w = new Writer();
  writeNewViewBody(w, m);
  return sha256(concatBytes(D_NEW_VIEW, chain, w.done()));
}

/** A view change as carried inside a NEW-VIEW. */
export function stripPayloads(vc: ViewChange): ViewChange {
  return { ...vc, prepared: vc.prepared.map((p) => ({ ...p, payload: null })) };
}

// ---------------------------------------------------------------------------------------------
// Persisted records

/** The key a record is stored under: a newer record with the same key replaces the older one. */
export function recordKey(r: PersistRecord): string {
  switch (r.kind) {
    case 'view':
    case 'new-view':
      return r.kind;
    default:
      return `${r.kind}/${r.height}`;
  }
}

/** The height a record belongs to (0 for view records, which are never pruned). */
export function recordHeight(r: PersistRecord): number {
  return r.kind === 'view' || r.kind === 'new-view' ? 0 : r.height;
}

export function encodeRecord(r: PersistRecord): Uint8Array {
  const w = new Writer();
  w.u8(VERSION);
  w.u8(RECORD_CODES[r.kind]);
  switch (r.kind) {
    case 'view':
      w.u64(r.view);
      w.u8(r.changing ? 1 : 0);
      break;
    case 'new-view':
      w.u64(r.view);
      w.long(r.bytes);
      break;
    case 'prepare':
      w.u64(r.height);
      w.u64(r.view);
      w.hash(r.hash);
      w.hash(r.digest);
      break;
    case 'precommit':
      w.u64(r.height);
      w.u64(r.view);
      w.hash(r.hash);
      break;
    case 'prepared':
      w.u64(r.height);
      writePrepared(w, r.cert, true);
      break;
    case 'decided':
      w.u64(r.height);
      w.hash(r.hash);
      break;
  }
  return w.done();
}

export function decodeRecord(bytes: Uint8Array, limits: Limits = DEFAULT_LIMITS): PersistRecord {
  // Records are our own writes: a bad one means damaged storage, which must stop the node.
  const r = new Reader(bytes, { ...limits, maxPayloadBytes: limits.maxMessageBytes });
  if (r.u8() !== VERSION) throw new DecodeError('unknown record version');
  let out: PersistRecord;
  switch (r.u8()) {
    case 1:
      out = { kind: 'view', view: r.u64(), changing: r.bool() };
      break;
    case 2:
      out = { kind: 'new-view', view: r.u64(), bytes: r.payload() };
      break;
    case 3:
      out = { kind: 'prepare', height: r.u64(), view: r.u64(), hash: r.hash(), digest: r.hash() };
      break;
    case 4:
      out = { kind: 'precommit', height: r.u64(), view: r.u64(), hash: r.hash() };
      break;
    case 5: {
      const height = r.u64();
      out = { kind: 'prepared', height, cert: readPrepared(r) };
      break;
    }
    case 6:
      out = { kind: 'decided', height: r.u64(), hash: r.hash() };
      break;
    default:
      throw new DecodeError('unknown record type');
  }
  r.end();
  return out;
}
