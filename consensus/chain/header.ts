// Hashes of chain.md: block headers, validator sets, receipts and the commit message.
import { hash as oneShotHash } from 'node:crypto';
import { concatBytes, jcsHash, sha256, to0x, utf8 } from '../crypto/encoding.ts';
import type { Event, Genesis, Header, ReceiptCore, Validator } from './types.ts';

export const ZERO_HASH = to0x(new Uint8Array(32));
const COMMIT_DOMAIN = utf8('goodness/commit/v1');

/** The header object exactly as hashed: the eleven fields of chain.md and nothing else. */
export function headerFields(h: Header): Header {
  return {
    chain: h.chain,
    number: h.number,
    parentHash: h.parentHash,
    timestamp: h.timestamp,
    proposer: h.proposer,
    txCount: h.txCount,
    txRoot: h.txRoot,
    receiptRoot: h.receiptRoot,
    appHash: h.appHash,
    validatorsHash: h.validatorsHash,
    nextValidatorsHash: h.nextValidatorsHash,
  };
}

export function headerHash(h: Header): Uint8Array {
  return jcsHash(headerFields(h));
}

/** SHA-256 of JCS of `[{index, peerId, blsPublicKey}]` sorted by index. */
export function validatorsHash(validators: Validator[]): string {
  const list = [...validators]
    .sort((a, b) => a.index - b.index)
    .map((v) => ({ index: v.index, peerId: v.peerId, blsPublicKey: v.blsPublicKey }));
  return to0x(jcsHash(list));
}

/**
 * SHA-256 of JCS({txHash, status, code, log, events}). The top level is written by hand in
 * JCS member order (code, events, log, status, txHash): JSON.stringify of strings and integers
 * is exactly JCS, and this runs once per transaction on the commit path.
 */
export function receiptHash(r: ReceiptCore): Uint8Array {
  const events = eventsJcs(r.events);
  if (!Number.isSafeInteger(r.code)) throw new TypeError('a receipt code is an integer');
  // Hashed as a string: crypto.hash encodes it as UTF-8 itself, without a copy on the JS heap.
  return oneShotHash('sha256', `{"code":${r.code},"events":${events},"log":${JSON.stringify(r.log)},"status":${JSON.stringify(r.status)},"txHash":${JSON.stringify(r.txHash)}}`, 'buffer');
}

/**
 * JCS of a list of events `{type, attributes}`. Attribute values are strings, which
 * JSON.stringify escapes exactly as JCS does; JCS orders keys by UTF-16 code units (JavaScript's
 * string order), and JSON.stringify writes them in the order of its replacer list. So each
 * attribute object is one JSON.stringify call, with its keys sorted only when they are not
 * already in order (this runs for every transaction of every block).
 */
export function eventsJcs(events: Event[]): string {
  let out = '[';
  for (let i = 0; i < events.length; i++) {
    const e = events[i]!;
    out += `${i ? ',' : ''}{"attributes":${attributesJcs(e.attributes)},"type":${JSON.stringify(e.type)}}`;
  }
  return out + ']';
}

function attributesJcs(attributes: Record<string, string>): string {
  const keys = Object.keys(attributes);
  let sorted = true;
  for (let k = 0; k < keys.length; k++) {
    if (typeof attributes[keys[k]!] !== 'string') throw new TypeError('event attribute values are strings');
    if (k > 0 && keys[k - 1]! > keys[k]!) sorted = false;
  }
  return sorted ? JSON.stringify(attributes) : JSON.stringify(attributes, keys.sort());
}

/** What a validator signs to commit block h: SHA-256("goodness/commit/v1" || blockHash). */
export function commitMessage(blockHash: Uint8Array): Uint8Array {
  return sha256(concatBytes(COMMIT_DOMAIN, blockHash));
}

/** Block 0: the genesis header (chain.md). */
export function genesisHeader(genesis: Genesis, initialAppHash: string): Header {
  const vh = validatorsHash(genesis.validators);
  const empty = to0x(sha256());
  return {
    chain: genesis.chain,
    number: 0,
    parentHash: ZERO_HASH,
    timestamp: genesis.genesisTime,
    proposer: 0,
    txCount: 0,
    txRoot: empty,
    receiptRoot: empty,
    appHash: initialAppHash,
    validatorsHash: vh,
    nextValidatorsHash: vh,
  };
}
