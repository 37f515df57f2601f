// When each transaction commits, from the nodes' `newBlocks` subscriptions (rpc.md), never from
// polling receipts: one WebSocket per node, the first notice of a block from any node gives its
// commit time, and one getBlockByNumber per non-empty block gives its transaction hashes.
// A block the subscriptions skipped (a reconnect) is found from the next header's number and
// fetched; its commit time is then the time the gap was noticed, a little late rather than lost.
import type { GoodnessClient } from '../../rpc/client.ts';
import type { HeaderWithHash } from '../../rpc/types.ts';

export interface CommittedBlock {
  number: number;
  /** ms on the driver's clock (performance.now()) when the first node told of it */
  arrivedAt: number;
  /** block time, ms since the epoch (the proposer's clock) */
  timestamp: number;
  hashes: string[];
}

const RECONNECT_MS = 500;

export class CommitTracker {
  private highest = -1;
  /** false until start() has read the height: notices before that are of blocks at or below it */
  private ready = false;
  private readonly inflight = new Set<Promise<void>>();
  private stopped = false;
  /** the WebSocket connections already subscribed on (the SDK opens a new one after a close) */
  private readonly subscribedOn = new WeakSet<object>();
  private failures = 0;
  lastError: string | null = null;

  constructor(
    private readonly clients: GoodnessClient[],
    private readonly onBlock: (block: CommittedBlock) => void,
  ) {}

  /** Subscribes on every node, then reads the height: blocks above it are reported, none twice. */
  async start(): Promise<number> {
    await Promise.all(this.clients.map((c, i) => this.subscribe(c, i)));
    const height = await this.clients[0]!.getBlockNumber();
    this.highest = height;
    this.ready = true;
    return height;
  }

  /** The highest block number seen so far. */
  get height(): number {
    return this.highest;
  }

  /** Asks a node for its height and fetches any block not yet seen (a safety net for lost notices). */
  async catchUp(): Promise<void> {
    for (let i = 0; i < this.clients.length; i++) {
      try {
        const h = await this.clients[i]!.getBlockNumber();
        this.noticed(h, performance.now(), i);
        return;
      } catch (err) {
        this.lastError = (err as Error).message;
      }
    }
  }

  /** Waits until every block fetch under way has been reported, or `maxMs` has passed. */
  async settle(maxMs = 10_000): Promise<void> {
    const deadline = performance.now() + maxMs;
    while (this.inflight.size > 0 && performance.now() < deadline) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((r) => (timer = setTimeout(r, Math.max(1, deadline - performance.now()))));
      await Promise.race([Promise.allSettled([...this.inflight]), timeout]);
      clearTimeout(timer);
    }
  }

  /**
   * Stops reporting. Subscriptions end when the caller closes the clients' connections: waiting
   * for unsubscribe answers would hang on a node that no longer answers.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.settle(2_000);
  }

  private async subscribe(client: GoodnessClient, index: number): Promise<void> {
    const ws = await client.ws();
    await ws.subscribeNewBlocks((h: HeaderWithHash) => this.noticed(h.number, performance.now(), index, h));
    this.subscribedOn.add(ws);
    void this.watchClose(client, index);
  }

  /** Resubscribes when a node's WebSocket closes (a restart, a slow-reader disconnect). */
  private async watchClose(client: GoodnessClient, index: number): Promise<void> {
    for (;;) {
      await new Promise((r) => setTimeout(r, RECONNECT_MS).unref());
      if (this.stopped) return;
      const ws = await client.ws().catch(() => null);
      if (this.stopped) {
        await ws?.close();
        return;
      }
      if (!ws || ws.closed) continue;
      if (!this.subscribedOn.has(ws)) {
        this.subscribedOn.add(ws);
        try {
          await ws.subscribeNewBlocks((h: HeaderWithHash) => this.noticed(h.number, performance.now(), index, h));
        } catch (err) {
          this.lastError = (err as Error).message;
        }
      }
    }
  }
  private noticed(number: number, arrivedAt: number, from: number, header?: HeaderWithHash): void {
    if (!this.ready || this.stopped || number <= this.highest) return;
    const first = this.highest + 1;
    this.highest = number;
    for (let n = first; n <= number; n++) {
      const known = n === number ? header : undefined;
      if (known && known.txCount === 0) {
        this.onBlock({ number: n, arrivedAt, timestamp: known.timestamp, hashes: [] });
        continue;
      }
      const p = this.fetch(n, arrivedAt, from).finally(() => this.inflight.delete(p));
      this.inflight.add(p);
    }
  }

  private async fetch(number: number, arrivedAt: number, preferred: number): Promise<void> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const client = this.clients[(preferred + attempt) % this.clients.length]!;
      if (this.stopped) return;
      try {
        const block = await client.getBlockByNumber(number);
        if (this.stopped) return;
        if (block) {
          this.onBlock({ number, arrivedAt, timestamp: block.timestamp, hashes: block.transactions as string[] });
          return;
        }
      } catch (err) {
        this.lastError = (err as Error).message;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    this.failures++;
    this.lastError = `block ${number} could not be fetched from any node`;
  }

  get fetchFailures(): number {
    return this.failures;
  }
}
