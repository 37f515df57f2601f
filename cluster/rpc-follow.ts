// Certified blocks from other nodes' JSON-RPC, for a node that the validators' p2p network does
// not admit: an observer waiting to be promoted, or a validator that governance removed. It
// asks for nothing it could not ask as any client, and trusts nothing: the engine checks each
// block's certificate against the validator schedule and re-executes it (pbft-engine.ts sync).
import type { BlockSource, SyncedBlock } from '../consensus/block-sync.ts';
import { headerFields } from '../consensus/chain/header.ts';
import { from0x, jcs, to0x, utf8 } from '../consensus/crypto/encoding.ts';
import { GoodnessClient, type Call } from '../rpc/client.ts';
import type { CommitCertificate } from '../consensus/chain/types.ts';
import type { TxEnvelope } from '../rpc/types.ts';
import { txHash } from '../state/tx.ts';

/** Blocks per JSON-RPC batch: a full block of 5,000 transactions answers in a few MB. */
const BLOCKS_PER_BATCH = 4;
const TIMEOUT_MS = 10_000;
const FORWARD_DELAY_MS = 20;
/** the JSON-RPC server's default batch limit is 1,000 calls */
const FORWARD_BATCH = 500;

/** The bytes a node received for a transaction: kv's raw bytes, or tx.md's canonical encoding of the envelope. */
function txBytes(tx: TxEnvelope | { raw: string }): Uint8Array {
  if ('raw' in tx && typeof tx.raw === 'string') {
    const bytes = from0x(tx.raw);
    if (!bytes) throw new Error('a transaction\'s raw bytes are not 0x hex');
    return bytes;
  }
  // tx.md: the bytes on the chain are exactly JCS(envelope); any other encoding is refused.
  return utf8(jcs(tx));
}

export class RpcFollowSource implements BlockSource {
  private readonly clients: GoodnessClient[];
  /** the client that answered the highest height last: blocks are asked of it */
  private best = 0;

  constructor(urls: string[]) {
    if (urls.length === 0) throw new Error('follow needs at least one RPC URL');
    this.clients = urls.map((u) => new GoodnessClient(u, { timeoutMs: TIMEOUT_MS }));
  }

  get name(): string {
    return `rpc ${this.clients[this.best]!.url.origin}`;
  }

  async height(): Promise<number> {
    const answers = await Promise.allSettled(this.clients.map((c) => c.getBlockNumber()));
    let height = -1;
    answers.forEach((a, i) => {
      if (a.status === 'fulfilled' && a.value > height) {
        height = a.value;
        this.best = i;
      }
    });
    if (height < 0) throw new Error(`none of ${this.clients.length} RPC endpoints answered`);
    return height;
  }

  async blocks(from: number): Promise<SyncedBlock[]> {
    const client = this.clients[this.best]!;
    const calls: Call[] = [];
    for (let h = from; h < from + BLOCKS_PER_BATCH; h++) {
      calls.push({ method: 'getBlockByNumber', params: [h, true] }, { method: 'getCommitCertificate', params: [h] });
    }
    const answers = await client.batch(calls);
    const out: SyncedBlock[] = [];
    for (let i = 0; i < answers.length; i += 2) {
      const block = answers[i]!;
      const cert = answers[i + 1]!;
      if (!block.ok || !cert.ok || !block.result || !cert.result) break;
      const b = block.result as { hash: string; view: number; transactions: (TxEnvelope | { raw: string })[] } & Parameters<typeof headerFields>[0];
      const txs = b.transactions.map(txBytes);
      out.push({ block: { header: headerFields(b), hash: b.hash, view: b.view, txHashes: txs.map(txHash) }, certificate: cert.result as CommitCertificate, txs });
    }
    return out;
  }

  private outbox: string[] = [];
  /** forwarded batches go round the nodes */
  private forwardTo = 0;
  private flushTimer: NodeJS.Timeout | null = null;

  /**
   * Hands a client's transaction on to another node (batched every FORWARD_DELAY_MS). Best
   * effort: a transaction the other node refuses or never sees stays in this node's pool, is
   * forwarded again after the re-gossip delay, and expires like any other.
   */
  forward(tx: Uint8Array): void {
    this.outbox.push(to0x(tx));
    this.flushTimer ??= setTimeout(() => void this.flush(), FORWARD_DELAY_MS);
  }

  private async flush(): Promise<void> {
    this.flushTimer = null;
    const txs = this.outbox.splice(0, FORWARD_BATCH);
    if (this.outbox.length > 0) this.flushTimer = setTimeout(() => void this.flush(), FORWARD_DELAY_MS);
    if (txs.length === 0) return;
    const client = this.clients[this.forwardTo++ % this.clients.length]!;
    await client.batch(txs.map((raw) => ({ method: 'sendTransaction', params: [raw] }) as Call)).catch(() => undefined);
  }

  async close(): Promise<void> {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    await Promise.all(this.clients.map((c) => c.close()));
  }
}
