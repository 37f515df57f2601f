// The deterministic simulator over many seeds: n replicas of the real PBFT core in one process,
// a seeded network that drops, duplicates, delays, reorders and partitions, crashes and
// restarts from exactly what was persisted, and up to f Byzantine replicas (equivocating
// leader, conflicting and forged votes, replays, garbage, view-change spam, invalid blocks,
// silence, a leader that leaves replicas out). After each run, safety and liveness are checked
// (test/sim/run.ts). A failure prints its seed and the command that replays it. Votes use the
// fast SimVoteCrypto (a keyed MAC), except one scenario on real BLS.
//   More seeds: npm run sim -- --seeds 5000
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Sim, runSim, type SimResult } from './sim/run.ts';
import { SCENARIOS, scenarioByName, type Scenario } from './sim/scenarios.ts';

/** Seeds per scenario: more for the small clusters, which are cheap; fewer for the long stress runs. */
function seedsFor(s: Scenario): number {
  if (s.crypto === 'bls') return 1;
  const stress = s.name.startsWith('stress');
  if (s.n >= 10) return 4;
  if (s.n >= 7) return stress ? 3 : 8;
  return stress ? 6 : 18;
}

function report(failures: SimResult[]): string {
  return failures.map((r) => `${r.scenario} seed ${r.seed}:\n    ${r.violations.slice(0, 4).join('\n    ')}\n    replay: ${r.replay}`).join('\n');
}

let total = 0;
for (const scenario of SCENARIOS) {
  test(`${scenario.name}: ${seedsFor(scenario)} seeds keep safety and liveness`, () => {
    const failures: SimResult[] = [];
    for (let seed = 1; seed <= seedsFor(scenario); seed++) {
      const r = runSim(seed, scenario);
      total++;
      assert.ok(r.stats.heights.every((h) => h > 0), 'every honest replica committed something');
      if (!r.ok) failures.push(r);
    }
    assert.ok(failures.length === 0, `\n${report(failures)}`);
  });
}

test('a seed replays exactly: same seed, same trace; another seed, another trace', () => {
  const s = scenarioByName('mixed-4')!;
  const a = runSim(3, s);
  const b = runSim(3, s);
  const c = runSim(4, s);
  assert.is(a.trace, b.trace);
  assert.equal(a.stats.heights, b.stats.heights);
  assert.is.not(a.trace, c.trace);
  assert.is(a.replay, 'npm run sim -- --seed 3 --scenario mixed-4');
});

test('the checker reports two honest replicas committing different blocks at one height', () => {
  const sim = new Sim(1, scenarioByName('calm-4')!);
  const entry = (hash: string) => ({ height: 1, hash, parentHash: '0x' + '00'.repeat(32), payload: new Uint8Array(), certificate: null });
  sim.onCommit(sim.nodes[0]!, entry('0x' + '11'.repeat(32)));
  sim.onCommit(sim.nodes[1]!, entry('0x' + '11'.repeat(32)));
  assert.equal(sim.violationsSoFar(), []);
  sim.onCommit(sim.nodes[2]!, entry('0x' + '22'.repeat(32)));
  assert.match(sim.violationsSoFar().join('\n'), /SAFETY: node 2 committed/);
});

test.after(() => console.log(`  ${total} simulated runs`));

test.run();
