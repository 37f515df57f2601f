// Vouched transactions: how few validators need to verify a transaction's signature.
//
// Every validator verifying every signature makes Ed25519 the cluster's main cost, and a cost
// that grows with the number of validators. PBFT needs less. An honest validator sends on only
// transactions it knows to be valid, and proposes only those; so a transaction that f + 1
// distinct validators sent or proposed is valid (at most f of them are faulty, and an honest
// one among them verified it, or itself had f + 1 vouchers). A replica may then vote for a
// block holding it without verifying it again, and the commit certificate keeps its meaning:
// 2f + 1 signers, f + 1 of them honest, each of which knew every transaction to be valid.
//
// So a transaction is verified by f + 1 validators instead of all n:
//  - the validator a client gave it to (its entry) verifies it, as admission always did, and
//    gossips it: one voucher;
//  - f more, designated by the transaction's hash among the validators other than the one
//    that sent it, verify it when its gossip arrives and tell everyone so in a vouch (its
//    32-byte hash, p2p/tx-gossip.ts: sending the whole transaction again doubled the gossip's
//    bytes): f vouchers;
//  - every other validator admits it unverified and counts the distinct validators that sent
//    or vouched for it; with f + 1 it is known valid without a check. A proposal's leader
//    counts as one more voucher.
//  - the entry does not propose it itself before f validators have vouched for it (or
//    VOUCHERS_WAIT_MS passed, or a designated verifier is not connected): as sender and proposer
//    it is one voucher, not two, and the replicas would have had to verify it (0.15 checks per
//    transaction more at 4 validators under load).
// With 4 validators that is 2 verifications per transaction instead of 4; with 10, 4 instead
// of 10; each validator verifies about (f + 1) / n of the transactions.
//
// What keeps it safe (cluster/node.ts, consensus/pool.ts): a node never sends on, vouches for,
// proposes or votes for a transaction it neither verified nor has f + 1 vouchers for; one that
// waited too long for its vouchers (a designated verifier that is down or faulty) is verified by
// the node itself, and one whose signature then fails gets every validator that vouched for it
// penalised.
import { maxFaulty } from '../consensus/chain/certificate.ts';

/** Who validates, as the node sees it now. */
export interface VouchView {
  /** this node's validator index, −1 when it is not a validator */
  me: number;
  /** validator indices of the next height */
  validators: readonly number[];
}

/** What a node does with a transaction another validator gossiped. */
export type GossipedTxAction =
  /** verify it before admitting it (no vouching: an observer, or a set that tolerates no fault) */
  | 'verify'
  /** verify it, and send it on to every validator as a voucher (this node is designated) */
  | 'verify-and-vouch'
  /** admit it unverified; other validators' copies will vouch for it */
  | 'defer';

/**
 * The f validators, other than `sender`, that verify a transaction `sender` gossiped and send
 * it on: consecutive in index order from a start the transaction hash picks, so that the work
 * spreads evenly and every node computes the same ones.
 */
export function designatedVerifiers(txHash: string, sender: number, validators: readonly number[]): number[] {
  const others = validators.filter((v) => v !== sender).sort((a, b) => a - b);
  const f = maxFaulty(validators.length);
  if (others.length === 0 || f === 0) return [];
  // The hash is 0x-hex: its first 8 digits are uniform enough to spread the load.
  const start = parseInt(txHash.slice(2, 10), 16) % others.length;
  const out: number[] = [];
  for (let i = 0; i < Math.min(f, others.length); i++) out.push(others[(start + i) % others.length]!);
  return out;
}

/** Whether this node vouches and counts vouchers: it is a validator of a set that tolerates a fault. */
export function vouchingOn(view: VouchView): boolean {
  return view.me >= 0 && maxFaulty(view.validators.length) > 0 && view.validators.includes(view.me);
}

export function gossipedTxAction(view: VouchView, txHash: string, from: number): GossipedTxAction {
  const { me, validators } = view;
  if (!vouchingOn(view) || !validators.includes(from)) return 'verify';
  return designatedVerifiers(txHash, from, validators).includes(me) ? 'verify-and-vouch' : 'defer';
}

/** Whether these vouchers (validator indices, repeats allowed) are f + 1 distinct validators of `validators`. */
export function enoughVouchers(vouchers: Iterable<number | undefined>, validators: readonly number[]): boolean {
  const distinct = new Set<number>();
  for (const v of vouchers) if (v !== undefined && validators.includes(v)) distinct.add(v);
  return distinct.size >= maxFaulty(validators.length) + 1;
}

/**
 * Vouches that came before their transaction (the two come from different validators, over
 * different connections), kept until it arrives. Bounded, the oldest forgotten first: a
 * validator sending vouches for transactions that never come can only push out others' early
 * vouches, and a transaction whose vouch was forgotten is verified after a wait instead.
 */
export class EarlyVouches {
  private readonly byHash = new Map<string, number[]>();

  constructor(readonly max = 20_000) {}

  get size(): number {
    return this.byHash.size;
  }

  note(txHash: string, voucher: number): void {
    const known = this.byHash.get(txHash);
    if (known) {
      if (!known.includes(voucher)) known.push(voucher);
      return;
    }
    if (this.byHash.size >= this.max) this.byHash.delete(this.byHash.keys().next().value!);
    this.byHash.set(txHash, [voucher]);
  }

  /** The vouchers noted for a transaction, forgotten here. */
  take(txHash: string): number[] {
    const vouchers = this.byHash.get(txHash);
    if (!vouchers) return [];
    this.byHash.delete(txHash);
    return vouchers;
  }
}
