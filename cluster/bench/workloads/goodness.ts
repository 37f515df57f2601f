// The low-carbon travel scenario of spec/goodness.md under load. Before the clock: governance
// registers the organisations (an environment bureau as issuer, metro and bike-share operators
// as distributors, a sponsor, a rewards exchange, a clearing bank, a regulator), the scheme is
// defined, approved and assigned, a pool is committed and confirmed, an offer is published and
// approved, many users open their good accounts and consent to one distributor each, and each
// user gets a first deed worth what its share of redemptions will burn. Then the measured mix:
// distributors submit deeds of their users' trips, users redeem points at the exchange, the
// redemptions spread evenly through the deeds (20 % by default). Every transaction is built and
// signed before the clock starts; no measured transaction depends on another one, so the pool
// may order them as it likes and every one of them is valid.
import { randomBytes } from 'node:crypto';
import { ed25519Keygen, ed25519PublicKeyOf } from '../../../consensus/crypto/ed25519.ts';
import { sha256, to0x, utf8 } from '../../../consensus/crypto/encoding.ts';
import { Code } from '../../../state/codes.ts';
import { MAX_EXPIRY_AHEAD } from '../../../state/tx.ts';
import { drive, TxState, type PreparedTx } from '../driver.ts';
import { fetchReceipts, waitForHeight } from '../receipts.ts';
import { labelCode } from '../report.ts';
import { signAll, type AccountKeys, type TxToSign } from '../sign-pool.ts';
import { WorkloadUnavailable, type Workload, type WorkloadContext } from './types.ts';

export interface GoodnessWorkloadOptions {
  /** the secret key (64 hex) of a governor whose approval alone passes a proposal (the default genesis has one governor) */
  governorSecretKey: string;
  /** users with a good account (default 2000) */
  users?: number;
  /** distributor organisations (default 16: a busy operator must not hit a node's per-sender pool limit) */
  distributors?: number;
  /** share of redemptions in the measured mix, 0 to 1 (default 0.2) */
  redeemShare?: number;
}

const DAY_MS = 86_400_000;
/** Points one redemption burns (the offer's price; quantity 1). */
const PRICE_POINTS = 10;
/** Minor currency units one point is worth, and the pool's funding: budget for 10^12 points, far more than any run issues. */
const POINT_VALUE = 1;
const POOL_AMOUNT = 1_000_000_000_000;
/**
 * The bench scheme's daily cap is out of reach on purpose: the run measures throughput, and a
 * realistic cap (tested by the ledger's own tests) would turn most deeds into OVER_CAP refusals.
 */
const DAILY_CAP = 1_000_000_000_000;
const SETUP_DURATION_SEC = 600;

interface Party {
  name: string;
  role: 'issuer' | 'distributor' | 'sponsor' | 'exchange' | 'clearing' | 'supervisor';
  keys: AccountKeys;
}

export class GoodnessWorkload implements Workload {
  readonly name = 'goodness';
  readonly signed = true;
  private readonly users: number;
  private readonly distributors: number;
  private readonly redeemShare: number;
  private readonly governor: AccountKeys;

  constructor(opts: GoodnessWorkloadOptions) {
    this.governor = { secretKey: opts.governorSecretKey, publicKey: ed25519PublicKeyOf(opts.governorSecretKey) };
    this.users = opts.users ?? 2000;
    this.distributors = opts.distributors ?? 16;
    this.redeemShare = opts.redeemShare ?? 0.2;
    if (!(this.users >= 1) || !(this.distributors >= 1)) throw new RangeError('the goodness workload needs at least one user and one distributor');
    if (!(this.redeemShare >= 0 && this.redeemShare <= 1)) throw new RangeError('the share of redemptions is from 0 to 1');
  }

  /** Whether measured transaction k is a redemption: redemptions spread evenly through the deeds. */
  isRedemption(k: number): boolean {
    return Math.floor((k + 1) * this.redeemShare) > Math.floor(k * this.redeemShare);
  }

  async prepare(ctx: WorkloadContext, count: number): Promise<PreparedTx[]> {
    const run = 'b' + Date.now().toString(36) + randomBytes(3).toString('hex');
    const client = ctx.clients[0]!;
    let nonce = 0;
    const tx = (keys: AccountKeys, type: string, body: Record<string, unknown>, expires: number): TxToSign => ({
      keys,
      fields: { chain: ctx.chain, type, nonce: `${run}-${(nonce++).toString(36)}`, expires, body },
    });
    const expiresNow = async () => (await client.getBlockNumber()) + MAX_EXPIRY_AHEAD;
    const phase = async (label: string, make: (expires: number) => TxToSign[]) => {
      const txs = await signAll(make(await expiresNow()));
      const started = performance.now();
      const blockTime = await submitAndConfirm(ctx, label, txs);
      ctx.log(`setup: ${label}: ${txs.length} transactions committed in ${((performance.now() - started) / 1000).toFixed(1)} s`);
      return blockTime;
    };

    // Organisations, by governance: one proposal each, passed by the governor's own approval.
    const party = (name: string, role: Party['role']): Party => ({ name, role, keys: ed25519Keygen() });
    const issuer = party('Environment Bureau', 'issuer');
    const distributors = Array.from({ length: this.distributors }, (_, i) => party(i % 2 === 0 ? `Metro Line ${i + 1}` : `Bike Share ${i + 1}`, 'distributor'));
    const sponsor = party('Green Sponsor Co', 'sponsor');
    const exchange = party('Carbon Rewards Exchange', 'exchange');
    const clearing = party('Clearing Bank', 'clearing');
    const supervisor = party('Regulator', 'supervisor');
    const orgs = [issuer, ...distributors, sponsor, exchange, clearing, supervisor];
    await phase('organisations registered by governance', (expires) =>
      orgs.map((o, k) => tx(this.governor, 'gov.propose', { proposal: `${run}.g${k}`, action: { type: 'org.register', org: o.keys.publicKey, name: o.name, roles: [o.role] } }, expires)),
    );

    const scheme = `${run}.scheme`;
    const pool = `${run}.pool`;
    const offer = `${run}.offer`;
    await phase('scheme defined', (expires) => [
      tx(issuer.keys, 'scheme.define', { scheme, name: 'Low-carbon travel (bench)', unit: 'km', pointsPerUnit: 1, dailyCap: DAILY_CAP, pointValue: POINT_VALUE, lotValidityDays: 365, claimWindowDays: 30, autoIssue: true }, expires),
    ]);
    await phase('scheme approved and assigned, pool committed', (expires) => [
      tx(supervisor.keys, 'scheme.approve', { scheme }, expires),
      ...distributors.map((d) => tx(issuer.keys, 'scheme.assign', { scheme, distributor: d.keys.publicKey }, expires)),
      tx(sponsor.keys, 'pool.commit', { pool, scheme, amount: POOL_AMOUNT }, expires),
    ]);
    // The clearing bank confirms before the exchange publishes: a pool's clearing provider may not be an exchange paid from it.
    await phase('pool confirmed', (expires) => [tx(clearing.keys, 'pool.confirm', { pool, amount: POOL_AMOUNT, paymentRef: `${run}-funding` }, expires)]);
    await phase('offer published', (expires) => [tx(exchange.keys, 'offer.publish', { offer, pool, pricePoints: PRICE_POINTS, unitValue: 1, stock: Number.MAX_SAFE_INTEGER }, expires)]);

    // Users: keys, good accounts, consent to one distributor each.
    const users = Array.from({ length: this.users }, () => ed25519Keygen());
    const distributorOf = (u: number) => distributors[u % distributors.length]!;
    await phase(`offer approved, ${this.users} good accounts opened`, (expires) => [tx(sponsor.keys, 'offer.approve', { offer }, expires), ...users.map((u) => tx(u, 'account.open', {}, expires))]);
    const consentExpiresAt = Date.now() + 30 * DAY_MS;
    const consentBlockTime = await phase(`${this.users} consents granted`, (expires) =>
      users.map((u, i) => tx(u, 'consent.grant', { consent: `${run}.c${i}`, distributor: distributorOf(i).keys.publicKey, scheme, expiresAt: consentExpiresAt }, expires)),
    );
    // Deeds happen after the consents (a consent covers deeds from its grant on).
    const occurredAt = consentBlockTime;

    let redemptions = 0;
    for (let k = 0; k < count; k++) if (this.isRedemption(k)) redemptions++;
    const perUser = Math.ceil(redemptions / this.users);
    let evidence = 0;
    const deed = (user: number, deedId: string, quantity: number, expires: number) =>
      tx(
        distributorOf(user).keys,
        'deed.submit',
        { deed: deedId, user: users[user]!.publicKey, scheme, quantity, occurredAt, evidenceHash: to0x(sha256(utf8(`${run}/evidence/${evidence++}`))), consent: `${run}.c${user}` },
        expires,
      );
    if (perUser > 0) {
      await phase(`first deeds of ${this.users} users (${perUser * PRICE_POINTS} points each)`, (expires) => users.map((_, u) => deed(u, `${run}.seed${u}`, perUser * PRICE_POINTS, expires)));
    }

    // The measured transactions: signed now, before the clock.
    const signedAt = performance.now();
    const expires = await expiresNow();
    const toSign: TxToSign[] = new Array(count);
    let deeds = 0;
    let redeemed = 0;
    for (let k = 0; k < count; k++) {
      if (this.isRedemption(k)) {
        toSign[k] = tx(users[redeemed % this.users]!, 'offer.redeem', { redemption: `${run}.r${redeemed}`, offer, quantity: 1 }, expires);
        redeemed++;
      } else {
        // Trips of 1 to 20 km.
        toSign[k] = deed(deeds % this.users, `${run}.d${deeds}`, ((deeds * 7919) % 20) + 1, expires);
        deeds++;
      }
    }
    const out = await signAll(toSign);
    ctx.log(`signed ${count.toLocaleString('en-US')} transactions (${deeds.toLocaleString('en-US')} deeds, ${redeemed.toLocaleString('en-US')} redemptions) in ${((performance.now() - signedAt) / 1000).toFixed(1)} s`);
    return out;
  }
}

/**
 * Sends one setup phase, waits until every transaction is committed with status ok, and
 * returns the latest block time among them. Throws with the first refusal's reason; an
 * unknown transaction type means the ledger lacks what the workload needs.
 */
export async function submitAndConfirm(ctx: WorkloadContext, label: string, txs: PreparedTx[]): Promise<number> {
  const d = await drive({ urls: ctx.urls, txs, rate: { kind: 'max' }, durationSec: SETUP_DURATION_SEC, drainTimeoutSec: 120 });
  for (const [i, why] of d.refusedWith) {
    const sample = d.refusalSamples[why] ?? '';
    if (why === `-32001/${Code.UNKNOWN_TYPE}`) throw new WorkloadUnavailable(`the chain does not implement a transaction the goodness workload needs (${label}): ${sample}`);
    throw new Error(`setup failed (${label}): transaction ${txs[i]!.hash} was refused at admission: ${labelCode(why)}: ${sample}`);
  }
  const unresolved = d.unresolved.admitted + d.unresolved.backpressured + d.unresolved.unknown;
  if (unresolved > 0) throw new Error(`setup failed (${label}): ${unresolved} transactions were not committed within the wait (${JSON.stringify(d.unresolved)}${d.notes.length ? `; ${d.notes.join('; ')}` : ''})`);
  await waitForHeight(ctx.clients[0]!, d.endHeight);
  const receipts = await fetchReceipts(ctx.clients[0]!, txs.map((t) => t.hash));
  let lastBlock = 0;
  receipts.forEach((r, i) => {
    if (!r) throw new Error(`setup failed (${label}): no receipt for committed transaction ${txs[i]!.hash}`);
    if (r.status !== 'ok') {
      const hint = r.code === Code.NOT_PERMITTED && label.startsWith('scheme') ? ' (did the governor key alone pass the proposals? the bench needs a governor whose approval is a majority)' : '';
      throw new Error(`setup failed (${label}): transaction ${txs[i]!.hash} was rejected in block ${r.blockNumber}: ${labelCode(`block/${r.code}`)}: ${r.log}${hint}`);
    }
    if (r.blockNumber > lastBlock) lastBlock = r.blockNumber;
    if (d.state[i] !== TxState.COMMITTED) throw new Error(`setup failed (${label}): transaction ${txs[i]!.hash} has a receipt but its block was not seen`);
  });
  const block = await ctx.clients[0]!.getBlockByNumber(lastBlock);
  return block!.timestamp;
}
