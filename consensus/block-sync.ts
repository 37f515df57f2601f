// Catch-up and transaction fetch between validators, over the transport's sync channel
// (request/response). A lagging, restarted or wiped replica asks peers for committed blocks
// with their certificates; a replica validating a proposal asks the proposer for transactions
// it has not received by gossip. Requests and answers are JSON; transactions travel as base64.
import type { CommitCertificate } from './chain/types.ts';
import type { TxPool } from './pool.ts';
import type { Transport } from '../p2p/types.ts';
import type { ChainStore } from '../state/store/chain-store.ts';
import type { StoredBlock } from '../state/store/types.ts';
import { fromUtf8, utf8 } from './crypto/encoding.ts';

export const MAX_BLOCKS_PER_REQUEST = 32;
/**
 * An answer stops adding blocks past this many bytes (it always carries at least one), so that
 * it fits the transport's frame limit (cluster/node.ts sets 16 MiB): a full block of 4 MiB of
 * transactions is about 5.5 MB once base64-encoded.
 */
export const SYNC_ANSWER_BUDGET_BYTES = 8 * 1024 * 1024;
export const MAX_TXS_PER_REQUEST = 20_000;
const HASH_RE = /^0x[0-9a-f]{64}$/;

type SyncRequest = { type: 'blocks'; from: number; max: number } | { type: 'txs'; hashes: string[] } | { type: 'status' };

export interface SyncedBlock {
  block: StoredBlock;
  certificate: CommitCertificate;
  txs: Uint8Array[];
}

/** Somewhere to fetch committed blocks from: a validator over p2p, or nodes' JSON-RPC. The engine checks every block. */
export interface BlockSource {
  readonly name: string;
  height(): Promise<number>;
  /** committed blocks from `from` on (at least one when the source has it, a bounded number) */
  blocks(from: number): Promise<SyncedBlock[]>;
  /** the source sent a block that does not check out */
  penalize?(reason: string): void;
}

function encode(value: unknown): Uint8Array {
  return utf8(JSON.stringify(value));
}

function parseRequest(bytes: Uint8Array): SyncRequest | null {
  try {
    const r = JSON.parse(fromUtf8(bytes)) as SyncRequest;
    if (r?.type === 'blocks' && Number.isSafeInteger(r.from) && r.from >= 1 && Number.isSafeInteger(r.max) && r.max >= 1) return r;
    if (r?.type === 'txs' && Array.isArray(r.hashes) && r.hashes.length <= MAX_TXS_PER_REQUEST && r.hashes.every((h) => typeof h === 'string' && HASH_RE.test(h))) return r;
    if (r?.type === 'status') return r;
  } catch {
    // fall through: a malformed request is answered with an error by the transport
  }
  return null;
}

/** Answers peers' sync requests from the chain store and the pool. */
export function serveSync(transport: Transport, store: ChainStore, pool: TxPool): () => void {
  return transport.onRequest(async (_from, bytes) => {
    const req = parseRequest(bytes);
    if (!req) throw new Error('malformed sync request');
    if (req.type === 'status') return encode({ height: store.latestHeight() });
    if (req.type === 'txs') {
      const out: (string | null)[] = [];
      const fromStore: number[] = [];
      req.hashes.forEach((h, i) => {
        const entry = pool.get(h);
        out.push(entry ? Buffer.from(entry.bytes).toString('base64') : null);
        if (!entry) fromStore.push(i);
      });
      for (const i of fromStore) {
        const tx = await store.getTx(req.hashes[i]!);
        if (tx) out[i] = Buffer.from(tx.bytes).toString('base64');
      }
      return encode({ txs: out });
    }
    const blocks: string[] = [];
    let answerBytes = 0;
    const last = Math.min(store.latestHeight(), req.from + Math.min(req.max, MAX_BLOCKS_PER_REQUEST) - 1);
    for (let h = req.from; h <= last; h++) {
      const block = await store.getBlock(h);
      const certificate = await store.getCertificate(h);
      if (!block || !certificate) break;
      const txs = await Promise.all(block.txHashes.map((hash) => store.getTx(hash)));
      const entry = JSON.stringify({ block, certificate, txs: txs.map((t) => Buffer.from(t!.bytes).toString('base64')) });
      if (blocks.length > 0 && answerBytes + entry.length > SYNC_ANSWER_BUDGET_BYTES) break;
      blocks.push(entry);
      answerBytes += entry.length;
    }
    return utf8(`{"blocks":[${blocks.join(',')}]}`);
  });
}

/** Asks one peer for committed blocks from `from`; the caller checks every one before applying it. */
export async function fetchBlocks(transport: Transport, peer: number, from: number, timeoutMs: number): Promise<SyncedBlock[]> {
  const answer = JSON.parse(fromUtf8(await transport.request(peer, encode({ type: 'blocks', from, max: MAX_BLOCKS_PER_REQUEST }), timeoutMs))) as { blocks?: unknown };
  if (!Array.isArray(answer.blocks)) throw new Error('malformed blocks answer');
  return answer.blocks.map((b) => {
    const x = b as { block: StoredBlock; certificate: CommitCertificate; txs: string[] };
    if (!x?.block?.header || !x.certificate || !Array.isArray(x.txs)) throw new Error('malformed block in answer');
    return { block: x.block, certificate: x.certificate, txs: x.txs.map((t) => new Uint8Array(Buffer.from(String(t), 'base64'))) };
  });
}

/** Asks a peer for transactions by hash; absent ones come back null. */
export async function fetchTxs(transport: Transport, peer: number, hashes: string[], timeoutMs: number): Promise<(Uint8Array | null)[]> {
  const answer = JSON.parse(fromUtf8(await transport.request(peer, encode({ type: 'txs', hashes }), timeoutMs))) as { txs?: unknown };
  if (!Array.isArray(answer.txs) || answer.txs.length !== hashes.length) throw new Error('malformed txs answer');
  return answer.txs.map((t) => (typeof t === 'string' ? new Uint8Array(Buffer.from(t, 'base64')) : null));
}

/** A peer's committed height, to know whom to sync from. */
export async function fetchPeerHeight(transport: Transport, peer: number, timeoutMs: number): Promise<number> {
  const answer = JSON.parse(fromUtf8(await transport.request(peer, encode({ type: 'status' }), timeoutMs))) as { height?: unknown };
  if (!Number.isSafeInteger(answer.height)) throw new Error('malformed status answer');
  return answer.height as number;
}
