// npm run bench:ledger — the goodness ledger alone, on one core: blocks of pre-verified
// transactions (admitted by checkTx, as a node's pool hands them over) executed and committed,
// first deed.submit, then offer.redeem, then redemption.fulfil. Signing and admission happen
// before the clock starts; the clock covers executeBlock (handlers, app hash, state writes)
// and commit. Options (environment):
//   BENCH_DEEDS (100000), BENCH_USERS (50000), BENCH_BLOCK (5000)
//   BENCH_GC (1): 0 leaves the garbage of signing and admission for the measured phase to collect
//   (and skips the heap figures, which need full collections)
//
// The process holds what a node would: the ledger, the blocks still to execute, and the keys
// that sign the next phase. A block's transactions are let go once it is committed, and the
// garbage that signing a whole phase up front leaves (a node signs nothing) is collected
// before the clock starts, so the CPU time of a phase is the ledger's own, the collection of
// the garbage it makes included.
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { measureEd25519 } from '../cluster/bench/limits.ts';
import { listWrites, type BlockTx } from '../state/machine.ts';
import { DAY_MS } from '../state/goodness/records.ts';
import { castApp, evidence, newCast, newSigner, signTx, World, type TxSpec } from '../state/goodness/testing.ts';

const DEEDS = Number(process.env.BENCH_DEEDS ?? 100_000);
const USERS = Number(process.env.BENCH_USERS ?? 50_000);
const BLOCK = Number(process.env.BENCH_BLOCK ?? 5_000);
const COLLECT = process.env.BENCH_GC !== '0';

/** A full garbage collection, without starting Node with --expose-gc. */
const collectGarbage: () => void = COLLECT
  ? (() => {
      setFlagsFromString('--expose-gc');
      return runInNewContext('gc') as () => void;
    })()
  : () => {};

/** Heap in use after a full collection: what the process keeps (BENCH_GC=0: NaN, nothing is collected). */
function keptHeap(): number {
  if (!COLLECT) return NaN;
  collectGarbage();
  return process.memoryUsage().heapUsed;
}

function chunk<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

function ok(w: World, specs: TxSpec[]): void {
  for (const part of chunk(specs, BLOCK)) {
    const run = w.block(part);
    const bad = run.result.receipts.find((r) => r.status !== 'ok');
    if (bad) throw new Error(`setup transaction refused: ${bad.code} ${bad.log}`);
  }
}

/** Signs and admits one block's transactions against the committed state, as the pool would. */
function admit(w: World, specs: TxSpec[], height: number): BlockTx[] {
  return specs.map((s) => {
    const t = signTx(s, height);
    const c = w.ledger.checkTx(t.bytes, { height });
    if (!c.ok) throw new Error(`admission refused ${s.type}: ${c.code} ${c.log}`);
    return { ...t, checked: c.checked };
  });
}

/** Signs and admits a phase's transactions, block by block, each valid at the height it will execute at. */
function admitAll(w: World, specs: TxSpec[]): BlockTx[][] {
  return chunk(specs, BLOCK).map((b, i) => admit(w, b, w.height + 1 + i));
}

/**
 * Executes and commits pre-admitted blocks; returns transactions per second of ledger time.
 * Takes the blocks over: each is let go once committed, as a node lets go of what it executed.
 */
async function execute(w: World, blocks: BlockTx[][], label: string): Promise<number> {
  let txs = 0;
  let ms = 0;
  let cpuMs = 0;
  const count = blocks.length;
  collectGarbage();
  for (let i = 0; i < count; i++) {
    const block = blocks[i]!;
    blocks[i] = [];
    const h = w.height + 1;
    w.time += 1000;
    // Let timers and I/O callbacks run between blocks, as they would in a node.
    await new Promise((r) => setImmediate(r));
    const started = performance.now();
    const cpu = process.cpuUsage();
    const result = w.ledger.executeBlock({ height: h, timestamp: w.time, proposer: 0 }, block);
    // The writes as the chain store takes them (the engine lists them when it commits the block).
    if (listWrites(result.writes).length === 0) throw new Error(`${label}: block ${h} wrote nothing`);
    w.ledger.commit(h);
    const used = process.cpuUsage(cpu);
    ms += performance.now() - started;
    cpuMs += (used.user + used.system) / 1000;
    w.height = h;
    const bad = result.receipts.find((r) => r.status !== 'ok');
    if (bad) throw new Error(`${label}: refused ${bad.code} ${bad.log}`);
    txs += block.length;
  }
  // CPU time of this process, so that other work on a shared machine does not count.
  const rate = txs / (cpuMs / 1000);
  console.log(
    `${label.padEnd(18)} ${String(txs).padStart(7)} txs in ${String(count).padStart(3)} blocks of ${BLOCK}: ${(cpuMs / 1000).toFixed(2)} CPU-s, ${Math.round(rate).toLocaleString('en-US')} tx/s ` +
      `(${((cpuMs * 1000) / txs).toFixed(1)} µs per tx; wall ${(ms / 1000).toFixed(2)} s, ${Math.round(txs / (ms / 1000)).toLocaleString('en-US')} tx/s)`,
  );
  return rate;
}

async function main(): Promise<void> {
  const cast = newCast(1);
  const w = await World.open(castApp(cast));
  w.checkInvariants = false;
  const users = Array.from({ length: USERS }, newSigner);
  console.log(`goodness ledger bench: ${DEEDS} deeds from ${USERS} users, blocks of ${BLOCK}, Node ${process.version}${COLLECT ? '' : ' (BENCH_GC=0)'}`);

  ok(w, [{ from: cast.bureau, type: 'scheme.define', body: { scheme: 'green', name: 'Green travel', unit: 'km', pointsPerUnit: 10, dailyCap: 1_000_000, pointValue: 1, lotValidityDays: 365, claimWindowDays: 7, autoIssue: true } }]);
  ok(w, [
    { from: cast.bureau, type: 'scheme.assign', body: { scheme: 'green', distributor: cast.metro.publicKey } },
    { from: cast.sponsor, type: 'pool.commit', body: { pool: 'city', scheme: 'green', amount: 1e12 } },
    { from: cast.regulator, type: 'scheme.approve', body: { scheme: 'green' } },
  ]);
  ok(w, [{ from: cast.bank, type: 'pool.confirm', body: { pool: 'city', amount: 1e12, paymentRef: 'wire' } }]);
  ok(w, [
    { from: cast.exchange, type: 'offer.publish', body: { offer: 'bus-ticket', pool: 'city', pricePoints: 5, unitValue: 1, stock: 1e12 } },
  ]);
  ok(w, [{ from: cast.sponsor, type: 'offer.approve', body: { offer: 'bus-ticket' } }]);
  ok(w, users.map((u) => ({ from: u, type: 'account.open', body: {} })));
  ok(w, users.map((u, i) => ({ from: u, type: 'consent.grant', body: { consent: `c${i}`, distributor: cast.metro.publicKey, scheme: 'green', expiresAt: w.time + 30 * DAY_MS } })));

  // deed.submit: consecutive deeds go to different users, so a block touches BLOCK accounts.
  // Each phase's specs exist only while it is signed: nothing holds them once it is admitted.
  const occurredAt = w.time;
  const deed = (i: number): TxSpec => {
    const u = i % USERS;
    return { from: cast.metro, type: 'deed.submit', body: { deed: `d${i}`, user: users[u]!.publicKey, scheme: 'green', quantity: 1 + (i % 7), occurredAt, evidenceHash: evidence(`trip-${i}`), consent: `c${u}` } };
  };
  // The heap each phase leaves behind: the ledger holds its whole state in memory (README), so
  // this is what a node's heap grows by per transaction, and what bounds a node's life at a heap limit.
  const heapBeforeDeeds = keptHeap();
  const submitRate = await execute(w, admitAll(w, Array.from({ length: DEEDS }, (_, i) => deed(i))), 'deed.submit');
  const heapAfterDeeds = keptHeap();

  // offer.redeem: one ticket (5 points) per deed, by the deed's user (each deed gave 10-70 points).
  const redeem = (i: number): TxSpec => ({ from: users[i % USERS]!, type: 'offer.redeem', body: { redemption: `r${i}`, offer: 'bus-ticket', quantity: 1 } });
  const redeemRate = await execute(w, admitAll(w, Array.from({ length: DEEDS }, (_, i) => redeem(i))), 'offer.redeem');
  const heapAfterRedeems = keptHeap();

  const fulfil = (i: number): TxSpec => ({ from: cast.exchange, type: 'redemption.fulfil', body: { redemption: `r${i}` } });
  const fulfilRate = await execute(w, admitAll(w, Array.from({ length: DEEDS }, (_, i) => fulfil(i))), 'redemption.fulfil');
  const heapAfterFulfils = keptHeap();

  const started = performance.now();
  ok(w, [{ from: cast.bank, type: 'clearing.close', body: { batch: 'b1', pools: ['city'] } }]);
  console.log(`clearing.close of ${DEEDS} fulfilled redemptions: ${(performance.now() - started).toFixed(0)} ms (admission and execution)`);
  if (COLLECT) {
    const perTx = (a: number, b: number) => Math.round((b - a) / DEEDS);
    const cycle = perTx(heapBeforeDeeds, heapAfterFulfils);
    const limit = getHeapStatistics().heap_size_limit;
    console.log(
      `heap kept per transaction: deed.submit ${perTx(heapBeforeDeeds, heapAfterDeeds)} B, offer.redeem ${perTx(heapAfterDeeds, heapAfterRedeems)} B, redemption.fulfil ${perTx(heapAfterRedeems, heapAfterFulfils)} B; ` +
        `at this heap limit (${Math.round(limit / 2 ** 20)} MiB) a node holds about ${((limit / cycle) / 1e6).toFixed(1)} million deeds with their redemptions`,
    );
  }
  // The machine's own speed in the same run: a shared host's speed drifts by a third over a day,
  // and the ledger's figures with it.
  const ed25519 = measureEd25519(1);
  console.log(`machine: Ed25519 ${Math.round(ed25519).toLocaleString('en-US')} verify/s on this core; deed.submit per Ed25519 verification: ${(submitRate / ed25519).toFixed(2)}`);
  console.log(`\nsummary: deed.submit ${Math.round(submitRate)}/s, offer.redeem ${Math.round(redeemRate)}/s, redemption.fulfil ${Math.round(fulfilRate)}/s (target: deed.submit >= 50000/s)`);
}

await main();
