// What operators watch beyond height and pool (issue 6): view changes by cause, commit latency,
// RocksDB write latency, sync progress, consensus messages by type. The engine, pool and store
// keep plain counts or call back with durations; prom-client lives only here and in node.ts.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { CountedMessageType, MessageCounts, PbftEngine } from '../consensus/pbft-engine.ts';
import { VIEW_CHANGE_CAUSES } from '../consensus/pbft/types.ts';
import type { TxPool } from '../consensus/pool.ts';
import type { ChainStore } from '../state/store/chain-store.ts';

/** Admission to commit: 10 ms (a block every few tens of ms under load) to 30 s (view changes, backlog). */
export const COMMIT_LATENCY_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** One RocksDB write batch: a consensus record is sub-millisecond, a 10,000-transaction block tens of ms. */
export const DB_WRITE_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

/** Every type a series is created for from the start, so that dashboards and rate() see zeros, not gaps. */
const MESSAGE_TYPES: readonly CountedMessageType[] = ['pre-prepare', 'prepare', 'precommit', 'commit', 'view-change', 'new-view', 'certificate'];

export interface NodeMetricSources {
  /** read at scrape time (the engine is made after the registry) */
  engine(): PbftEngine;
  pool: TxPool;
  store: ChainStore;
}

export function registerNodeMetrics(r: Registry, s: NodeMetricSources): void {
  const { engine, pool, store } = s;

  new Counter({
    name: 'goodness_view_changes_total',
    help: 'moves of this replica\'s PBFT view, by cause: timeout (no progress in a view), view-change-timeout (no NEW-VIEW in time), join (f + 1 peers in a higher view), new-view (entered a higher view\'s NEW-VIEW), restart (resumed a persisted view)',
    labelNames: ['cause'],
    registers: [r],
    collect() {
      const counts = engine().counters.viewChanges;
      this.reset();
      for (const cause of VIEW_CHANGE_CAUSES) this.inc({ cause }, counts.get(cause) ?? 0);
    },
  });

  const byDirectionAndType = (name: string, help: string, pick: (c: { messages: number; bytes: number }) => number) =>
    new Counter({
      name,
      help,
      labelNames: ['direction', 'type'],
      registers: [r],
      collect() {
        const { sent, received } = engine().counters;
        this.reset();
        for (const [direction, counts] of [['sent', sent], ['received', received]] as [string, MessageCounts][]) {
          for (const type of MESSAGE_TYPES) this.inc({ direction, type }, pick(counts.get(type) ?? { messages: 0, bytes: 0 }));
          const other = counts.get('other');
          if (other) this.inc({ direction, type: 'other' }, pick(other));
        }
      },
    });
  byDirectionAndType('goodness_consensus_messages_total', 'consensus messages sent (one per peer queue that took it) and received, by type', (c) => c.messages);
  byDirectionAndType('goodness_consensus_message_bytes_total', 'bytes of consensus messages sent (per peer) and received, by type', (c) => c.bytes);

  // prom-client's observe() measured at about 0.6 µs (test/metrics-units.test.ts prints it): at
  // 10,000 transactions a second that is under 1% of a core, so each transaction is observed.
  const latency = new Histogram({ name: 'goodness_tx_commit_latency_seconds', help: 'time from admission into this node\'s pool to commit, per transaction', buckets: COMMIT_LATENCY_BUCKETS, registers: [r] });
  pool.onCommitted((waited) => {
    for (const ms of waited) latency.observe(ms / 1000);
  });

  const writes = new Histogram({ name: 'goodness_db_write_seconds', help: 'RocksDB write batch duration, by kind: block (a committed block) or consensus (votes, views, a proposal\'s transactions)', labelNames: ['kind'], buckets: DB_WRITE_BUCKETS, registers: [r] });
  writes.zero({ kind: 'block' });
  writes.zero({ kind: 'consensus' });
  store.observeWrites((kind, seconds) => writes.observe({ kind }, seconds));

  new Gauge({ name: 'goodness_sync_target_height', help: 'the highest height this node knows of (its own height when it knows of none higher)', registers: [r], collect() { this.set(engine().syncStatus().highestKnownHeight); } });
  new Gauge({ name: 'goodness_syncing', help: '1 while this node fetches certified blocks from peers, else 0', registers: [r], collect() { this.set(engine().syncStatus().syncing ? 1 : 0); } });
  new Counter({
    name: 'goodness_sync_blocks_total',
    help: 'blocks applied by sync (fetched from peers with their certificates) rather than decided by this node\'s replica',
    registers: [r],
    collect() {
      this.reset();
      this.inc(engine().counters.syncedBlocks);
    },
  });
}
