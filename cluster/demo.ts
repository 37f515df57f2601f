// npm run demo — the low-carbon travel scenario of goodness.md, end to end over JSON-RPC:
// governance registers the organisations, the bureau defines a green travel scheme, a sponsor
// funds it and the bank confirms the funds, the regulator approves it, hundreds of citizens open
// good accounts and consent, their trips become deeds and points, they redeem offers, the bank
// clears and settles, the regulator freezes a cheater and reverses its deeds, and the audit
// figures balance. Each step prints what happened, with figures read back from the chain.
//
//   npm run demo                       starts its own one-node cluster in a temp dir, stops it at the end
//   npm run demo -- --rpc URL          uses a running node (e.g. `npm start`'s, http://127.0.0.1:26651);
//                                      --governor-key FILE (default .goodness/accounts/governor.json)
//                                      is a governor's key of that chain
//   --users N (default 300)
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Command } from 'commander';
import { Ed25519Signer, ed25519Keygen } from '../consensus/crypto/ed25519.ts';
import { sha256, to0x, utf8 } from '../consensus/crypto/encoding.ts';
import { GoodnessClient, signQueryAuth, type TxRequest } from '../rpc/client.ts';
import type { Receipt } from '../rpc/types.ts';
import { NODE_V8_FLAGS } from './config.ts';
import { Code } from '../state/codes.ts';
import { initCluster } from './init.ts';

const ROOT = join(import.meta.dirname, '..');
const DAY_MS = 86_400_000;
/** Calls per JSON-RPC batch: well under the server's limits (1000 calls, 1 MiB). */
const BATCH = 250;

const CODE_NAMES = new Map<number, string>(Object.entries(Code).map(([name, code]) => [code, name]));

interface Options {
  rpc?: string;
  governorKey: string;
  users: number;
}

function parseArgs(): Options {
  const program = new Command('demo')
    .description('The low-carbon travel scenario of the goodness ledger, end to end over JSON-RPC')
    .option('--rpc <url>', 'a running node; without it the demo starts its own one-node cluster')
    .option('--governor-key <file>', 'with --rpc: the key file of a governor of that chain', '.goodness/accounts/governor.json')
    .option('--users <n>', 'how many citizens take part', '300');
  program.parse(process.argv);
  const o = program.opts<{ rpc?: string; governorKey: string; users: string }>();
  const users = Number(o.users);
  if (!Number.isInteger(users) || users < 10 || users > 5000) throw new Error('--users is a whole number from 10 to 5000');
  return { rpc: o.rpc, governorKey: o.governorKey, users };
}

const signer = () => new Ed25519Signer(ed25519Keygen().secretKey);
const fmt = (n: number) => n.toLocaleString('en-US');
const money = (minor: number) => `¥${(minor / 100).toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
const short = (id: string) => `${id.slice(0, 8)}…`;

function step(title: string): void {
  console.log(`\n== ${title}`);
}

function line(text: string): void {
  console.log(`   ${text}`);
}

// ---- a node of our own ----------------------------------------------------------------------

async function freePortPair(): Promise<number> {
  const listen = (port: number) =>
    new Promise<boolean>((ok) => {
      const s = createServer();
      s.once('error', () => ok(false));
      s.listen(port, '127.0.0.1', () => s.close(() => ok(true)));
    });
  for (let i = 0; i < 50; i++) {
    const base = 30_000 + 2 * Math.floor(Math.random() * 10_000);
    if ((await listen(base)) && (await listen(base + 1))) return base;
  }
  throw new Error('no free pair of ports found');
}

interface OwnCluster {
  url: string;
  governors: Ed25519Signer[];
  stop(): Promise<void>;
}

async function startOwnCluster(): Promise<OwnCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'goodness-demo-'));
  const governors = [signer(), signer(), signer()];
  const appState = join(dir, 'app-state.json');
  writeFileSync(appState, JSON.stringify({ governors: governors.map((g) => g.publicKey), orgs: [] }));
  const [node] = await initCluster({ nodes: 1, dir: join(dir, 'cluster'), basePort: await freePortPair(), chain: 'goodness-demo', appState, machine: 'goodness' });
  const child: ChildProcess = spawn(process.execPath, [...NODE_V8_FLAGS, join(ROOT, 'bin', 'goodness.js'), 'node', '--dir', node!.dir, '--log-level', 'warn'], { stdio: ['ignore', 'inherit', 'inherit'] });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  for (let i = 0; i < 300; i++) {
    try {
      if ((await fetch(`${node!.rpc}/health`)).ok) return { url: node!.rpc, governors, stop };
    } catch {
      // not listening yet
    }
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  await stop();
  throw new Error('the demo node did not become healthy');
}

// ---- sending ---------------------------------------------------------------------------------

type Tx = { from: Ed25519Signer } & TxRequest;

/** Sends transactions in JSON-RPC batches and waits until every one has a receipt. */
async function send(client: GoodnessClient, txs: Tx[]): Promise<Receipt[]> {
  const built = await Promise.all(txs.map((t) => client.buildTx(t.from, { type: t.type, body: t.body })));
  for (let i = 0; i < built.length; i += BATCH) {
    const part = built.slice(i, i + BATCH);
    const answers = await client.batch(part.map((b) => ({ method: 'sendTransaction' as const, params: [b.raw] as [string] })));
    answers.forEach((a, j) => {
      if (!a.ok) throw new Error(`${txs[i + j]!.type} refused at admission: ${a.error.message} ${JSON.stringify(a.error.data ?? '')}`);
    });
  }
  const receipts = new Array<Receipt | null>(built.length).fill(null);
  for (let tries = 0; receipts.includes(null); tries++) {
    if (tries > 600) throw new Error('transactions were not committed within a minute');
    await new Promise((r) => setTimeout(r, tries === 0 ? 50 : 100));
    const missing = receipts.flatMap((r, i) => (r === null ? [i] : []));
    for (let k = 0; k < missing.length; k += BATCH) {
      const idx = missing.slice(k, k + BATCH);
      const answers = await client.batch(idx.map((i) => ({ method: 'getTransactionReceipt' as const, params: [built[i]!.hash] as [string] })));
      answers.forEach((a, j) => {
        if (a.ok && a.result) receipts[idx[j]!] = a.result;
      });
    }
  }
  return receipts as Receipt[];
}

/** Sends and insists that every transaction was accepted. */
async function sendOk(client: GoodnessClient, txs: Tx[]): Promise<Receipt[]> {
  const receipts = await send(client, txs);
  const bad = receipts.findIndex((r) => r.status !== 'ok');
  if (bad >= 0) throw new Error(`${txs[bad]!.type} was refused: ${CODE_NAMES.get(receipts[bad]!.code)} ${receipts[bad]!.log}`);
  return receipts;
}

function tally(receipts: Receipt[]): string {
  const counts = new Map<string, number>();
  for (const r of receipts) {
    const k = r.status === 'ok' ? 'ok' : (CODE_NAMES.get(r.code) ?? String(r.code));
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return [...counts].map(([k, n]) => `${n} ${k}`).join(', ');
}

// ---- the scenario ------------------------------------------------------------------------------

async function scenario(client: GoodnessClient, governors: Ed25519Signer[], userCount: number): Promise<void> {
  const tag = Date.now().toString(36); // ids are unique per run, so the demo can run again on the same chain
  const q = async <T>(path: string, as?: Ed25519Signer): Promise<T> => (await client.query(path, as ? signQueryAuth(as, path) : undefined)).value as T;
  const version = await client.getClientVersion();
  console.log(`Goodness demo: the low-carbon travel scenario on chain ${version.chain} (${client.url.origin}), ${userCount} citizens.`);

  step('1. The alliance committee registers the organisations through governance');
  const orgs = {
    bureau: { key: signer(), name: 'Environment Bureau', roles: ['issuer'] },
    metro: { key: signer(), name: 'Metro Operator', roles: ['distributor'] },
    bikes: { key: signer(), name: 'Bike-Share Platform', roles: ['distributor'] },
    sponsor: { key: signer(), name: 'Green Sponsor Co.', roles: ['sponsor'] },
    exchange: { key: signer(), name: 'Eco Rewards Exchange', roles: ['exchange'] },
    bank: { key: signer(), name: 'City Bank', roles: ['clearing'] },
    regulator: { key: signer(), name: 'Financial Regulator', roles: ['supervisor'] },
  };
  const [proposer, ...voters] = governors;
  const needed = Math.floor(governors.length / 2) + 1;
  const proposals = Object.entries(orgs).map(([k, o]) => ({ id: `reg-${k}-${tag}`, ...o }));
  const proposed = await sendOk(
    client,
    proposals.map((p) => ({ from: proposer!, type: 'gov.propose', body: { proposal: p.id, action: { type: 'org.register', org: p.key.publicKey, name: p.name, roles: p.roles } } })),
  );
  let executed = proposed.filter((r) => r.events.some((e) => e.type === 'gov.executed')).length;
  for (const voter of voters.slice(0, needed - 1)) {
    const votes = await sendOk(client, proposals.map((p) => ({ from: voter, type: 'gov.vote', body: { proposal: p.id, approve: true } })));
    executed += votes.filter((r) => r.events.some((e) => e.type === 'gov.executed')).length;
  }
  line(`${governors.length} governor(s); an action passes with ${needed} approval(s).`);
  for (const p of proposals) line(`${p.name.padEnd(22)} ${p.roles.join(', ').padEnd(12)} account ${short(p.key.publicKey)}`);
  line(`${executed} of ${proposals.length} proposals executed.`);

  const { bureau, metro, bikes, sponsor, exchange, bank, regulator } = Object.fromEntries(Object.entries(orgs).map(([k, o]) => [k, o.key])) as Record<keyof typeof orgs, Ed25519Signer>;

  step('2. The bureau defines the green travel scheme and assigns its distributors');
  const scheme = `green-${tag}`;
  const def = { scheme, name: 'Green travel', unit: 'km', pointsPerUnit: 10, dailyCap: 300, pointValue: 2, lotValidityDays: 30, claimWindowDays: 7, autoIssue: true };
  await sendOk(client, [{ from: bureau, type: 'scheme.define', body: def }]);
  await sendOk(client, [
    { from: bureau, type: 'scheme.assign', body: { scheme, distributor: metro.publicKey } },
    { from: bureau, type: 'scheme.assign', body: { scheme, distributor: bikes.publicKey } },
  ]);
  line(`${def.pointsPerUnit} points per km, at most ${def.dailyCap} points per person per day, 1 point = ${money(def.pointValue)}, points live ${def.lotValidityDays} days.`);

  step('3. The sponsor commits funds, the bank confirms them, the regulator approves the scheme');
  const pool = `pool-${tag}`;
  const funding = 12_000_00; // ¥12,000.00 in minor units
  await sendOk(client, [{ from: sponsor, type: 'pool.commit', body: { pool, scheme, amount: funding } }]);
  await sendOk(client, [
    { from: bank, type: 'pool.confirm', body: { pool, amount: funding, paymentRef: `SWIFT-${tag}` } },
    { from: regulator, type: 'scheme.approve', body: { scheme } },
  ]);
  const afterFunding = await q<{ budget: number; funded: number }>(`audit/scheme/${scheme}`);
  line(`Pool ${pool}: ${money(funding)} confirmed; the scheme's budget is ${fmt(afterFunding.budget)} points. Status: approved.`);

  step(`4. ${userCount} citizens open good accounts and consent to both distributors`);
  const users = Array.from({ length: userCount }, signer);
  await sendOk(client, users.map((u) => ({ from: u, type: 'account.open', body: {} })));
  await sendOk(
    client,
    users.flatMap((u, i) => [
      { from: u, type: 'consent.grant', body: { consent: `m-${tag}-${i}`, distributor: metro.publicKey, scheme, expiresAt: Date.now() + 90 * DAY_MS } },
      { from: u, type: 'consent.grant', body: { consent: `b-${tag}-${i}`, distributor: bikes.publicKey, scheme, expiresAt: Date.now() + 90 * DAY_MS } },
    ]),
  );
  line(`${fmt(userCount)} accounts opened, ${fmt(2 * userCount)} consents granted (personal data stays off the chain: deeds carry km and an evidence hash).`);

  step('5. Trips become deeds and points');
  // Each citizen makes three trips, just now (after consenting: a consent covers trips made
  // while it is valid); citizen 0 claims three implausibly long ones.
  const tripTime = Date.now();
  let n = 0;
  const trips: Tx[] = users.flatMap((u, i) =>
    [0, 1, 2].map((t) => {
      const byMetro = (i + t) % 2 === 0;
      const km = i === 0 ? 60 : 1 + ((i * 7 + t * 5) % 14);
      const id = n++;
      return {
        from: byMetro ? metro : bikes,
        type: 'deed.submit',
        body: {
          deed: `trip-${tag}-${id}`,
          user: u.publicKey,
          scheme,
          quantity: km,
          occurredAt: tripTime,
          evidenceHash: to0x(sha256(utf8(`trip record ${tag} ${id}`))),
          consent: `${byMetro ? 'm' : 'b'}-${tag}-${i}`,
        },
      };
    }),
  );
  // A replayed trip record (the same evidence again) is refused.
  trips.push({ ...trips[3]!, body: { ...trips[3]!.body, deed: `replay-${tag}` } });
  const tripReceipts = await send(client, trips);
  const points = tripReceipts.reduce((s, r) => s + Number(r.events[0]?.attributes.points ?? 0), 0);
  const cut = tripReceipts.filter((r) => r.events[0] && r.events[0].attributes.points !== r.events[0].attributes.requested).length;
  line(`${fmt(trips.length)} deeds submitted: ${tally(tripReceipts)}.`);
  line(`${fmt(points)} points issued; ${cut} deed(s) cut to the daily cap of ${def.dailyCap} points.`);
  const alice = users[1]!;
  const aliceView = await q<{ points: number; lots: unknown[] }>(`account/${alice.publicKey}`, alice);
  const anonView = await q<Record<string, unknown>>(`account/${alice.publicKey}`);
  line(`Citizen ${short(alice.publicKey)} sees ${aliceView.points} points in ${aliceView.lots.length} lots; an anonymous caller sees ${anonView.points} points and no lots (${'lots' in anonView ? 'LEAK' : 'as the table says'}).`);

  step('6. The exchange publishes offers, the sponsor approves them, citizens redeem');
  const ticket = `bus-ticket-${tag}`;
  const coffee = `coffee-${tag}`;
  await sendOk(client, [
    { from: exchange, type: 'offer.publish', body: { offer: ticket, pool, pricePoints: 150, unitValue: 300, stock: 10_000 } },
    { from: exchange, type: 'offer.publish', body: { offer: coffee, pool, pricePoints: 400, unitValue: 800, stock: 50 } },
  ]);
  await sendOk(client, [
    { from: sponsor, type: 'offer.approve', body: { offer: ticket } },
    { from: sponsor, type: 'offer.approve', body: { offer: coffee } },
  ]);
  line(`Bus ticket: 150 points (worth ${money(300)}); coffee: 400 points (worth ${money(800)}), 50 in stock.`);
  const redeems: Tx[] = users.map((u, i) => ({ from: u, type: 'offer.redeem', body: { redemption: `red-${tag}-${i}`, offer: i % 3 === 0 && i > 0 ? coffee : ticket, quantity: 1 } }));
  const redeemReceipts = await send(client, redeems);
  line(`${fmt(redeems.length)} redemptions asked: ${tally(redeemReceipts)}.`);
  const redeemed = redeemReceipts.map((r, i) => ({ r, i })).filter(({ r }) => r.status === 'ok');
  const cancelled = redeemed.filter(({ i }) => i % 20 === 7);
  const fulfilled = redeemed.filter(({ i }) => i % 20 !== 7);
  await sendOk(client, [
    ...fulfilled.map(({ i }) => ({ from: exchange, type: 'redemption.fulfil', body: { redemption: `red-${tag}-${i}` } })),
    ...cancelled.map(({ i }) => ({ from: exchange, type: 'redemption.cancel', body: { redemption: `red-${tag}-${i}` } })),
  ]);
  line(`The exchange fulfilled ${fulfilled.length} and cancelled ${cancelled.length} (their points went back to the same lots).`);

  step('7. The bank closes a clearing batch, settles it, and the counterparties confirm');
  const batch = `batch-${tag}`;
  const closed = await sendOk(client, [{ from: bank, type: 'clearing.close', body: { batch, pools: [pool] } }]);
  const b = await q<{ lines: { sponsor: string; exchange: string; amount: number; redemptions: number }[]; total: number }>(`batch/${batch}`, bank);
  line(`Batch ${batch}: ${closed[0]!.events[0]!.attributes.redemptions} redemptions in ${b.lines.length} line(s), total ${money(b.total)}.`);
  for (const l of b.lines) line(`  ${short(l.sponsor)} (sponsor) pays ${short(l.exchange)} (exchange) ${money(l.amount)} for ${l.redemptions} redemptions`);
  await sendOk(client, [{ from: bank, type: 'clearing.settle', body: { batch, paymentRefs: b.lines.map((_, k) => `PAY-${tag}-${k}`) } }]);
  const confirmed = await sendOk(client, [
    { from: sponsor, type: 'clearing.confirm', body: { batch } },
    { from: exchange, type: 'clearing.confirm', body: { batch } },
  ]);
  const p = await q<{ confirmed: number; reserved: number; settled: number }>(`pool/${pool}`);
  line(`Settled; status ${confirmed.at(-1)!.events[0]!.attributes.status}. Pool: confirmed ${money(p.confirmed)}, settled ${money(p.settled)}, still reserved ${money(p.reserved)}.`);
  const outsider = await client.query(`batch/${batch}`, signQueryAuth(alice, `batch/${batch}`)).then(
    () => 'visible (WRONG)',
    (e: { code?: number }) => `refused with ${e.code}`,
  );
  line(`A citizen asking for the batch is ${outsider}.`);

  step('8. The regulator freezes a cheating account and reverses its deeds');
  const cheater = users[0]!;
  const cheats = await q<{ deed: string; points: number; status: string }[]>(`account/${cheater.publicKey}/deeds`, regulator);
  await sendOk(client, [{ from: regulator, type: 'supervise.freeze', body: { target: cheater.publicKey, reason: 'implausible 60 km trips' } }]);
  const reversals = await sendOk(
    client,
    cheats.filter((d) => d.status === 'issued').map((d) => ({ from: regulator, type: 'deed.reverse', body: { deed: d.deed, reason: 'implausible 60 km trip' } })),
  );
  const clawed = reversals.reduce((s, r) => s + Number(r.events[0]!.attributes.clawedBack), 0);
  const shortfall = reversals.reduce((s, r) => s + Number(r.events[0]!.attributes.shortfall), 0);
  line(`${reversals.length} deed(s) reversed: ${fmt(clawed)} unspent points clawed back, ${fmt(shortfall)} already spent recorded as the scheme's shortfall.`);
  const blocked = await send(client, [{ from: metro, type: 'deed.submit', body: { ...trips[0]!.body, deed: `after-freeze-${tag}`, evidenceHash: to0x(sha256(utf8(`after ${tag}`))) } }]);
  line(`A new deed for the frozen account: ${blocked[0]!.status} (${CODE_NAMES.get(blocked[0]!.code)}: ${blocked[0]!.log}).`);

  step('9. The audit figures');
  const a = await q<{ issued: number; live: number; redeemed: number; expired: number; clawedBack: number; budget: number; funded: number; pointValue: number; shortfall: number }>(`audit/scheme/${scheme}`);
  const balanced = a.issued === a.live + a.redeemed + a.expired + a.clawedBack;
  line(`issued ${fmt(a.issued)} = live ${fmt(a.live)} + redeemed ${fmt(a.redeemed)} + expired ${fmt(a.expired)} + clawed back ${fmt(a.clawedBack)}  ${balanced ? '✓ balances' : '✗ DOES NOT BALANCE'}`);
  const covered = a.issued * a.pointValue <= a.funded;
  line(`issued × point value ${money(a.issued * a.pointValue)} ≤ confirmed funding ${money(a.funded)}  ${covered ? '✓' : '✗'}`);
  const poolOk = p.reserved + p.settled <= p.confirmed;
  line(`pool reserved ${money(p.reserved)} + settled ${money(p.settled)} ≤ confirmed ${money(p.confirmed)}  ${poolOk ? '✓' : '✗'}`);
  const log = await q<unknown[]>('audit/log?from=0', regulator);
  line(`The regulator's audit log holds ${log.length} governance and supervision actions; nobody else may read it.`);
  const count = await client.getTotalTransactionCount();
  line(`Chain height ${count.blockNumber}: ${fmt(count.transactions)} transactions committed, ${fmt(count.rejected)} of them refused with a reason in their receipt.`);
  if (!balanced || !covered || !poolOk) throw new Error('the audit figures do not balance');
}

async function main(): Promise<void> {
  const opts = parseArgs();
  const started = Date.now();
  let own: OwnCluster | null = null;
  try {
    let url = opts.rpc;
    let governors: Ed25519Signer[];
    if (url) {
      const key = JSON.parse(readFileSync(resolve(opts.governorKey), 'utf8')) as { secretKey: string };
      governors = [new Ed25519Signer(key.secretKey)];
    } else {
      console.log('Starting a one-node cluster for the demo...');
      own = await startOwnCluster();
      url = own.url;
      governors = own.governors;
    }
    const client = new GoodnessClient(url);
    try {
      await scenario(client, governors, opts.users);
    } finally {
      await client.close();
    }
    console.log(`\nDone in ${((Date.now() - started) / 1000).toFixed(1)} s.`);
  } finally {
    await own?.stop();
  }
}

main().catch((err: unknown) => {
  console.error(`demo failed: ${(err as Error)?.stack ?? String(err)}`);
  process.exit(1);
});
