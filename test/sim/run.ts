// One deterministic simulation run: n replicas of the real core in one process, a seeded
// network and fault schedule, then the checks. SAFETY: no two honest replicas commit different
// blocks at one height, every commit extends its chain with a valid certificate, no honest
// replica is ever reported faulty, no honest core halts, and the core keeps its side of the
// driver contract. LIVENESS: once the network heals (at most f faulty), within a bound, every
// honest replica commits a block that did not exist at the heal, and every transaction
// submitted before the heal.
import { createHash } from 'node:crypto';
import { verifyCertificate } from '../../consensus/chain/certificate.ts';
import type { Validator } from '../../consensus/chain/types.ts';
import { blsKeygen } from '../../consensus/crypto/bls.ts';
import { sha256, to0x, utf8 } from '../../consensus/crypto/encoding.ts';
import { commitSigningBytes } from '../../consensus/pbft/messages.ts';
import type { CommitCertificate, Hash } from '../../consensus/pbft/types.ts';
import { maxFaulty, quorumSize } from '../../consensus/pbft/view-change.ts';
import { BlsVoteCrypto, SimKeyring, type VoteCrypto } from '../../consensus/pbft/vote-crypto.ts';
import { makeBehaviour } from './byzantine.ts';
import { encodePayload } from './executor.ts';
import { SimNetwork } from './network.ts';
import { SimNode, type ChainEntry } from './node.ts';
import { Prng } from './prng.ts';
import { EventQueue } from './queue.ts';
import type { Scenario } from './scenarios.ts';

export interface SimResult {
  seed: number;
  scenario: string;
  ok: boolean;
  violations: string[];
  /** SHA-256 over the run's trace: two runs of one seed must give the same */
  trace: string;
  replay: string;
  stats: {
    heights: number[];
    maxView: number;
    messages: number;
    events: number;
    drops: Record<string, number>;
    /** simulated ms from the heal until liveness was shown (null if it never was) */
    recoveryMs: number | null;
    wallMs: number;
  };
}

export function replayCommand(seed: number, scenario: string): string {
  return `npm run sim -- --seed ${seed} --scenario ${scenario}`;
}

export class Sim {
  readonly queue = new EventQueue();
  readonly prng: Prng;
  readonly net: SimNetwork;
  readonly nodes: SimNode[] = [];
  readonly nodeIndexes: number[];
  readonly chain = 'goodness-sim';
  readonly submitted: number[] = [];
  private readonly violations: string[] = [];
  private readonly hash = createHash('sha256');
  private readonly honestAt = new Map<number, Hash>();
  private readonly drops: Record<string, number> = {};
  private readonly faultPrng: Prng;
  private readonly crashedAt = new Set<SimNode>();
  private readonly healAt: number;
  private endAt: number;
  private readonly baseSet: number[];
  private readonly nextSet: number[] | null;
  private readonly validators: Validator[] = [];
  private maxView = 0;

  constructor(
    readonly seed: number,
    readonly scenario: Scenario,
  ) {
    this.prng = new Prng(`${scenario.name}/${seed}`);
    this.faultPrng = this.prng.fork('faults');
    this.healAt = scenario.chaosMs;
    this.endAt = scenario.chaosMs + scenario.livenessBoundMs + scenario.tailMs;
    const n = scenario.n;
    this.baseSet = Array.from({ length: n }, (_, i) => i);
    // A set change: validator 0 leaves and validator n joins at a known height.
    this.nextSet = scenario.valsetChangeAt ? Array.from({ length: n }, (_, i) => i + 1) : null;
    this.nodeIndexes = this.nextSet ? [...this.baseSet, n] : [...this.baseSet];
    this.net = new SimNetwork(this.queue, this.prng.fork('net'), scenario.chaos, (to, from, bytes) => this.nodes[to]!.deliver(from, bytes));

    const cryptos = this.makeCrypto();
    const genesisPayload = encodePayload({ proposer: 0, view: 0, nonce: 0, txs: [], invalid: false });
    const genesis: ChainEntry = { height: 0, hash: to0x(sha256(utf8(`genesis/${scenario.name}`))), parentHash: to0x(new Uint8Array(32)), payload: genesisPayload, certificate: null };
    // Half the runs make the leader of view 0 Byzantine, so that leader behaviours always get a turn.
    const order = this.faultPrng.shuffle(this.baseSet);
    if (this.faultPrng.chance(0.5)) order.sort((x, y) => (x === 0 ? -1 : y === 0 ? 1 : 0));
    const byzNodes = new Set(order.slice(0, scenario.byzantine.length));
    let b = 0;
    for (const i of this.nodeIndexes) {
      const behaviour = byzNodes.has(i) ? makeBehaviour(scenario.byzantine[b++]!) : null;
      this.nodes.push(new SimNode(this, i, cryptos.of(i), behaviour, genesis, cryptos.forger));
    }
    if (scenario.byzantine.length > maxFaulty(n)) throw new Error(`scenario ${scenario.name}: more Byzantine nodes than f`);
  }

  private makeCrypto(): { of: (i: number) => VoteCrypto; forger: VoteCrypto } {
    if (this.scenario.crypto === 'bls') {
      const keys = this.nodeIndexes.map((i) => blsKeygen(sha256(utf8(`sim-bls/${this.seed}/${i}`))));
      for (const i of this.nodeIndexes) this.validators.push({ index: i, peerId: `peer-${i}`, blsPublicKey: to0x(keys[i]!.publicKey) });
      const forgerKey = blsKeygen(sha256(utf8(`sim-bls-forger/${this.seed}`)));
      return {
        of: (i) => BlsVoteCrypto.fromValidators(keys[i]!.secretKey, this.validators),
        forger: BlsVoteCrypto.fromValidators(forgerKey.secretKey, this.validators),
      };
    }
    const keyring = new SimKeyring(`${this.scenario.name}/${this.seed}`, this.nodeIndexes);
    const first = keyring.cryptoFor(this.nodeIndexes[0]!);
    return { of: (i) => keyring.cryptoFor(i), forger: SimKeyring.forger(`${this.seed}`, first) };
  }

  validatorsAt(height: number): readonly number[] {
    if (this.nextSet && height >= this.scenario.valsetChangeAt!) return this.nextSet;
    return this.baseSet;
  }

  /** What the driver checks before storing a certificate (chain.md). */
  checkCertificate(height: number, hash: Hash, cert: CommitCertificate): string | null {
    if (cert.number !== height || cert.blockHash !== hash) return 'certificate is for another block';
    const set = this.validatorsAt(height);
    if (this.scenario.crypto === 'bls') {
      const r = verifyCertificate(cert, hash, this.validators.filter((v) => set.includes(v.index)));
      return r.ok ? null : r.reason;
    }
    if (cert.signers.some((s) => !set.includes(s))) return 'signer outside the set';
    if (new Set(cert.signers).size !== cert.signers.length || cert.signers.length < quorumSize(set.length)) return 'not a quorum of distinct signers';
    const agg = Buffer.from(cert.aggregateSignature.slice(2), 'hex');
    return this.nodes[0]!.crypto.verifyAggregate(cert.signers, commitSigningBytes(hash), agg) ? null : 'aggregate does not verify';
  }

  violationsSoFar(): string[] {
    return [...this.violations];
  }

  trace(line: string): void {
    this.hash.update(`${this.queue.now} ${line}\n`);
  }

  violation(message: string, counts: boolean): void {
    if (!counts) return;
    const line = `t=${this.queue.now}ms ${message}`;
    this.trace(`violation ${line}`);
    if (this.violations.length < 20) this.violations.push(line);
  }

  onCommit(node: SimNode, e: ChainEntry): void {
    this.trace(`commit ${node.index} ${e.height} ${e.hash}`);
    if (!node.honest) return;
    const prev = this.honestAt.get(e.height);
    if (prev === undefined) this.honestAt.set(e.height, e.hash);
    else if (prev !== e.hash) this.violation(`SAFETY: node ${node.index} committed ${e.hash} at ${e.height}, another honest node ${prev}`, true);
  }

  onDrop(node: SimNode, from: number, reason: string, fault: boolean, detail?: string): void {
    this.drops[reason] = (this.drops[reason] ?? 0) + 1;
    this.trace(`drop ${node.index} ${from} ${reason}`);
    const sender = this.nodes[from];
    if (fault && sender?.honest && node.honest) this.violation(`honest node ${from} reported faulty by ${node.index}: ${reason}${detail ? ` (${detail})` : ''}`, true);
  }

  crashMidReady(node: SimNode): boolean {
    return node.honest && this.queue.now < this.healAt && this.faultPrng.chance(this.scenario.crashMidReady);
  }

  scheduleRestart(node: SimNode): void {
    this.crashedAt.add(node);
    const at = Math.min(this.queue.now + this.faultPrng.range(50, 1500), this.healAt);
    this.queue.schedule(at, () => this.restart(node));
  }

  private restart(node: SimNode): void {
    if (node.running) return;
    this.crashedAt.delete(node);
    this.trace(`restart ${node.index}`);
    node.start();
  }

  private submitTx(): void {
    const id = this.submitted.length;
    this.submitted.push(id);
    this.trace(`tx ${id}`);
    for (const n of this.nodes) n.onTxSubmitted(id);
  }

  private scheduleWorkload(): void {
    const [lo, hi] = this.scenario.txEveryMs;
    const rng = this.prng.fork('workload');
    const next = () => {
      if (this.queue.now >= this.endAt) return;
      const k = rng.range(1, 3);
      for (let i = 0; i < k; i++) this.submitTx();
      this.queue.after(rng.range(lo, hi), next);
    };
    this.queue.after(rng.range(lo, hi), next);
  }

  private scheduleFaults(): void {
    const s = this.scenario;
    const rng = this.faultPrng;
    const honest = this.nodes.filter((n) => n.honest);
    for (let i = 0; i < s.crashes; i++) {
      const at = rng.range(200, Math.max(300, s.chaosMs - 500));
      const node = rng.pick(honest);
      this.queue.schedule(at, () => {
        if (!node.running) return;
        node.crash();
        this.scheduleRestart(node);
      });
    }
    if (s.partitions) {
      let t = rng.range(100, 800);
      while (t < s.chaosMs) {
        const start = t;
        const shuffled = rng.shuffle(this.nodeIndexes);
        const cut = rng.range(1, shuffled.length - 1);
        const groups = [shuffled.slice(0, cut), shuffled.slice(cut)];
        this.queue.schedule(start, () => {
          this.trace(`partition ${JSON.stringify(groups)}`);
          this.net.partition(groups);
        });
        const end = Math.min(start + rng.range(300, 3000), s.chaosMs);
        this.queue.schedule(end, () => this.net.partition(null));
        t = end + rng.range(200, 1500);
      }
    }
    this.queue.schedule(this.healAt, () => {
      this.trace('heal');
      this.net.partition(null);
      this.net.faults = s.calm;
      for (const node of [...this.crashedAt]) this.restart(node);
      for (const node of this.nodes) if (node.honest && !node.running) this.restart(node);
    });
  }

  run(): SimResult {
    const started = Date.now();
    for (const node of this.nodes) node.start();
    this.scheduleWorkload();
    this.scheduleFaults();
    let events = 0;
    let heightAtHeal = 0;
    events += this.queue.runUntil(this.healAt, this.scenario.maxEvents);
    heightAtHeal = Math.max(...this.nodes.filter((n) => n.honest).map((n) => n.tip.height));
    const submittedAtHeal = this.submitted.length;
    // After the heal, run until liveness is shown (or its bound passes), then a short tail in
    // which safety is still checked: most runs converge in a second or two of simulated time.
    const bound = this.healAt + this.scenario.livenessBoundMs;
    while (this.queue.now < bound && events < this.scenario.maxEvents && !this.live(heightAtHeal, submittedAtHeal)) {
      events += this.queue.runUntil(Math.min(this.queue.now + 100, bound), this.scenario.maxEvents - events);
    }
    const recoveryMs = this.live(heightAtHeal, submittedAtHeal) ? this.queue.now - this.healAt : null;
    this.endAt = Math.min(this.queue.now + this.scenario.tailMs, bound + this.scenario.tailMs);
    events += this.queue.runUntil(this.endAt, this.scenario.maxEvents - events);
    if (events >= this.scenario.maxEvents) this.violation(`the run hit its event budget (${events}) at t=${this.queue.now}ms: a message storm`, true);
    for (const n of this.nodes) if (n.replica) this.maxView = Math.max(this.maxView, n.replica.status().view);
    this.checkLiveness(heightAtHeal, submittedAtHeal);
    const honest = this.nodes.filter((n) => n.honest);
    const trace = this.hash.digest('hex');
    return {
      seed: this.seed,
      scenario: this.scenario.name,
      ok: this.violations.length === 0,
      violations: [...this.violations],
      trace,
      replay: replayCommand(this.seed, this.scenario.name),
      stats: { heights: honest.map((n) => n.tip.height), maxView: this.maxView, messages: this.net.stats.sent, events, drops: { ...this.drops }, recoveryMs, wallMs: Date.now() - started },
    };
  }

  /** Every honest replica has committed a block that did not exist at the heal, and every transaction submitted before it. */
  private live(heightAtHeal: number, submittedAtHeal: number): boolean {
    for (const n of this.nodes) {
      if (!n.honest) continue;
      if (!n.running || n.tip.height <= heightAtHeal) return false;
      for (const id of n.uncommitted) if (id < submittedAtHeal) return false;
    }
    return true;
  }

  private checkLiveness(heightAtHeal: number, submittedAtHeal: number): void {
    const s = this.scenario;
    const honest = this.nodes.filter((n) => n.honest);
    for (const n of honest) {
      if (!n.running) {
        this.violation(`LIVENESS: node ${n.index} is not running at the end`, true);
        continue;
      }
      let first: number | null = null;
      for (const [h, t] of n.commitTimes) if (h > heightAtHeal && (first === null || t < first)) first = t;
      if (first === null || first - this.healAt > s.livenessBoundMs) {
        this.violation(`LIVENESS: node ${n.index} committed no new block within ${s.livenessBoundMs}ms of the heal (height at heal ${heightAtHeal}, now ${n.tip.height}${first === null ? '' : `, first at +${first - this.healAt}ms`})`, true);
      }
    }
    for (const n of honest) {
      const missing = [...n.uncommitted].filter((id) => id < submittedAtHeal);
      if (missing.length > 0) this.violation(`LIVENESS: node ${n.index} never committed ${missing.length} transactions submitted before the heal (e.g. ${missing.slice(0, 3).join(', ')}), height ${n.tip.height}`, true);
    }
  }
}

export function runSim(seed: number, scenario: Scenario): SimResult {
  return new Sim(seed, scenario).run();
}
