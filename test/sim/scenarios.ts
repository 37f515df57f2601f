// The simulator's scenarios. Each names its cluster size, its Byzantine behaviours (at most f),
// the network during the chaos phase and after the heal, crashes and partitions; the seed picks
// everything else (which nodes misbehave, when they crash, how the network splits).
import type { BehaviourName } from './byzantine.ts';
import type { LinkFaults } from './network.ts';

export interface Scenario {
  name: string;
  n: number;
  byzantine: BehaviourName[];
  chaos: LinkFaults;
  calm: LinkFaults;
  partitions: boolean;
  /** honest crash-and-restart events during the chaos phase */
  crashes: number;
  /** chance that an honest node crashes right after persisting a Ready, before sending it */
  crashMidReady: number;
  chaosMs: number;
  /**
   * After the heal, within this bound, every honest replica must commit a block that did not
   * exist at the heal, and every transaction submitted before the heal.
   */
  livenessBoundMs: number;
  /** how long the run goes on once liveness is shown (safety is still checked) */
  tailMs: number;
  txEveryMs: [number, number];
  maxTxsPerBlock: number;
  window: number;
  baseTimeoutMs: number;
  maxTimeoutDoublings: number;
  retransmitMs: number;
  buildMs: [number, number];
  validateMs: [number, number];
  byzTickMs: number;
  crypto: 'sim' | 'bls';
  /** validator 0 leaves and validator n joins at this height */
  valsetChangeAt?: number;
  /** a run that processes more events than this is a message storm: a failure */
  maxEvents: number;
}

const reliable: LinkFaults = { drop: 0, duplicate: 0, minDelayMs: 2, maxDelayMs: 15 };
const lossy: LinkFaults = { drop: 0.15, duplicate: 0.05, minDelayMs: 1, maxDelayMs: 120 };
const rough: LinkFaults = { drop: 0.05, duplicate: 0.03, minDelayMs: 1, maxDelayMs: 60 };

function base(name: string, n: number, over: Partial<Scenario> = {}): Scenario {
  const f = Math.floor((n - 1) / 3);
  const baseTimeoutMs = 300;
  const maxTimeoutDoublings = 3;
  const maxTimeout = baseTimeoutMs * 2 ** maxTimeoutDoublings;
  const livenessBoundMs = (f + 3) * 2 * maxTimeout + 3000;
  return {
    name,
    n,
    byzantine: [],
    chaos: reliable,
    calm: reliable,
    partitions: false,
    crashes: 0,
    crashMidReady: 0,
    chaosMs: 4000,
    livenessBoundMs,
    tailMs: 1500,
    txEveryMs: [150, 600],
    maxTxsPerBlock: 4,
    window: 4,
    baseTimeoutMs,
    maxTimeoutDoublings,
    retransmitMs: 150,
    buildMs: [10, 60],
    validateMs: [2, 20],
    byzTickMs: 200,
    crypto: 'sim',
    maxEvents: 3_000_000,
    ...over,
  };
}

function byz(n: number, behaviours: BehaviourName[], name = behaviours.join('+')): Scenario {
  return base(`byz-${name}-${n}`, n, { byzantine: behaviours, chaos: rough, calm: reliable, partitions: false, chaosMs: 5000 });
}

export const SCENARIOS: Scenario[] = [
  base('calm-4', 4, { chaosMs: 3000 }),
  base('calm-7', 7, { chaosMs: 3000 }),
  base('lossy-4', 4, { chaos: lossy, chaosMs: 6000 }),
  base('lossy-7', 7, { chaos: lossy, chaosMs: 6000 }),
  base('partition-4', 4, { chaos: rough, partitions: true, chaosMs: 8000 }),
  base('partition-7', 7, { chaos: rough, partitions: true, chaosMs: 8000 }),
  base('crash-4', 4, { chaos: rough, crashes: 4, chaosMs: 8000 }),
  base('crash-7', 7, { chaos: rough, crashes: 6, chaosMs: 8000 }),
  base('restarts-4', 4, { chaos: rough, crashMidReady: 0.02, chaosMs: 6000 }),
  // Restarts under an equivocating leader: a replica that forgot its vote would vote twice.
  base('restarts-equivocate-4', 4, { byzantine: ['equivocate'], chaos: rough, crashMidReady: 0.05, crashes: 6, chaosMs: 10000, baseTimeoutMs: 100, retransmitMs: 50 }),
  byz(4, ['equivocate']),
  byz(7, ['equivocate', 'equivocate']),
  byz(4, ['conflicting-votes']),
  byz(4, ['forge']),
  byz(4, ['replay']),
  byz(4, ['garbage']),
  byz(4, ['view-change-spam']),
  byz(7, ['view-change-spam', 'view-change-spam']),
  byz(4, ['invalid-blocks']),
  byz(4, ['silent']),
  byz(7, ['silent', 'silent']),
  byz(4, ['partial-leader']),
  byz(4, ['lies']),
  byz(7, ['lies', 'lies']),
  byz(7, ['equivocate', 'conflicting-votes']),
  base('mixed-4', 4, { byzantine: ['equivocate'], chaos: lossy, partitions: true, crashes: 2, crashMidReady: 0.01, chaosMs: 8000 }),
  base('mixed-7', 7, { byzantine: ['lies', 'view-change-spam'], chaos: rough, partitions: true, crashes: 3, crashMidReady: 0.01, chaosMs: 8000 }),
  base('mixed-10', 10, { byzantine: ['equivocate', 'forge', 'silent'], chaos: rough, partitions: true, crashes: 3, chaosMs: 6000, txEveryMs: [300, 900] }),
  // Timeouts close to message delays: view changes all the time, with blocks prepared at some
  // replicas and not others. This is where the view-change rules earn their keep.
  base('stress-4', 4, { byzantine: ['equivocate'], chaos: lossy, partitions: true, crashes: 4, crashMidReady: 0.01, chaosMs: 20000, baseTimeoutMs: 60, retransmitMs: 40 }),
  base('stress-7', 7, { byzantine: ['equivocate', 'conflicting-votes'], chaos: lossy, partitions: true, crashes: 4, crashMidReady: 0.01, chaosMs: 15000, baseTimeoutMs: 60, retransmitMs: 40 }),
  base('stress-lies-4', 4, { byzantine: ['lies'], chaos: lossy, partitions: true, crashes: 4, crashMidReady: 0.01, chaosMs: 15000, baseTimeoutMs: 60, retransmitMs: 40 }),
  base('stress-valset-4', 4, { valsetChangeAt: 12, chaos: lossy, partitions: true, crashes: 3, crashMidReady: 0.01, chaosMs: 15000, baseTimeoutMs: 60, retransmitMs: 40 }),
  base('calm-10', 10, { chaosMs: 2000, txEveryMs: [300, 900] }),
  base('valset-4', 4, { valsetChangeAt: 6, chaos: rough, chaosMs: 4000 }),
  base('bls-4', 4, { crypto: 'bls', chaosMs: 1500, livenessBoundMs: 3000, tailMs: 500, txEveryMs: [200, 400] }),
];

export function scenarioByName(name: string): Scenario | undefined {
  return SCENARIOS.find((s) => s.name === name);
}
