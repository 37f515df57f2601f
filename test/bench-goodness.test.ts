// The goodness workload against a real one-node goodness ledger: the whole setup (governance,
// scheme, pool, offer, accounts, consent, first deeds) is done before the clock, and the
// measured mix of deeds and redemptions commits without a single rejection. The ledger's own
// audit of the scheme then accounts for every point the run issued and burned.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { from0x, fromUtf8 } from '../consensus/crypto/encoding.ts';
import { drive } from '../cluster/bench/driver.ts';
import { analyzeRun } from '../cluster/bench/report.ts';
import { GoodnessWorkload } from '../cluster/bench/workloads/goodness.ts';
import { GoodnessClient } from '../rpc/client.ts';
import { HANDLERS } from '../state/goodness/tx-types.ts';
import { decodeTx, type TxEnvelope } from '../state/tx.ts';
import { startNode, type NodeProcess } from './fixtures/node-process.ts';

const BASE_PORT = 29300;
const NEEDED = ['gov.propose', 'scheme.define', 'scheme.approve', 'scheme.assign', 'pool.commit', 'pool.confirm', 'offer.publish', 'offer.approve', 'account.open', 'consent.grant', 'deed.submit', 'offer.redeem'];
const missing = NEEDED.filter((t) => !HANDLERS.has(t));

if (missing.length > 0) {
  console.log(`SKIP bench-goodness: the ledger does not implement ${missing.join(', ')} yet (state/goodness/tx-types.ts)`);
  test.skip('the goodness workload commits its mix against the ledger', () => {});
} else {
  test('the goodness workload: setup before the clock, then deeds and redemptions at 300 tx/s, none rejected', async () => {
    let node: NodeProcess | undefined;
    let client: GoodnessClient | undefined;
    try {
      node = await startNode({ machine: 'goodness', basePort: BASE_PORT });
      client = new GoodnessClient(node.url);
      const users = 100;
      const workload = new GoodnessWorkload({ governorSecretKey: node.governorKey().secretKey, users, distributors: 4, redeemShare: 0.2 });
      const count = 1200;
      const log: string[] = [];
      const txs = await workload.prepare({ urls: [node.url], clients: [client], chain: node.genesis.chain, log: (l) => log.push(l) }, count);
      assert.is(txs.length, count);
      assert.ok(log.some((l) => l.includes('consents granted')), log.join('\n'));

      // Signed off the main thread, the bytes are still exactly tx.md's: canonical, signed by their sender.
      for (const t of txs.filter((_, i) => i % 97 === 0)) {
        const decoded = decodeTx(from0x(t.raw)!, node.genesis.chain);
        assert.ok(decoded.ok, JSON.stringify(decoded));
        assert.is(decoded.ok && decoded.tx.hash, t.hash);
      }

      // The mix: one redemption in five, spread evenly, each deed a trip of 1-20 km.
      const envelopes = txs.map((t) => JSON.parse(fromUtf8(from0x(t.raw)!)) as TxEnvelope);
      const deeds = envelopes.filter((e) => e.tx.type === 'deed.submit');
      const redemptions = envelopes.filter((e) => e.tx.type === 'offer.redeem');
      assert.is(deeds.length + redemptions.length, count);
      assert.is(redemptions.length, count / 5);
      assert.ok(envelopes.slice(0, 10).filter((e) => e.tx.type === 'offer.redeem').length === 2, 'redemptions are spread through the deeds');
      assert.ok(deeds.every((e) => (e.tx.body.quantity as number) >= 1 && (e.tx.body.quantity as number) <= 20));
      assert.is(new Set(deeds.map((e) => e.tx.from)).size, 4, 'every distributor submits');
      assert.is(new Set(redemptions.map((e) => e.tx.from)).size, users, 'every user redeems');

      const before = await client.getTotalTransactionCount();
      const d = await drive({ urls: [node.url], txs, rate: { kind: 'rate', tps: 300 }, durationSec: 4, drainTimeoutSec: 30 });
      const r = analyzeRun(d, { name: 'goodness, 1 validator', workload: 'goodness', validators: 1, bound: 1, boundBy: 'test' });
      const after = await client.getTotalTransactionCount();
      assert.is(r.sent, count);
      assert.is(r.rejected, 0, JSON.stringify(r.rejectedByCode));
      assert.is(r.committed, count);
      assert.is(after.rejected - before.rejected, 0, 'no transaction was rejected in a block');
      assert.ok(Math.abs(r.committedTps! - 300) <= 15, `committed ${r.committedTps} tx/s, asked 300`);

      // The ledger accounts for it all: first deeds (what each user's share of redemptions burns)
      // plus the trips were issued; 10 points per redemption were redeemed.
      const scheme = deeds[0]!.tx.body.scheme as string;
      const audit = (await client.query(`audit/scheme/${scheme}`)).value as { issued: number; live: number; redeemed: number };
      const perUser = Math.ceil(redemptions.length / users);
      const trips = deeds.reduce((a, e) => a + (e.tx.body.quantity as number), 0);
      assert.is(audit.issued, users * perUser * 10 + trips);
      assert.is(audit.redeemed, redemptions.length * 10);
      assert.is(audit.live, audit.issued - audit.redeemed);
    } finally {
      await client?.close();
      await node?.cleanup();
    }
  });
}

test.run();
