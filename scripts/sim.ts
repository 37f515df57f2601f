// The long-run simulator: thousands of seeded runs of the PBFT core across the scenarios of
// test/sim/scenarios.ts, with a report and, for each failure, the command that replays it.
//   npm run sim -- --seeds 5000                 seeds 1..5000, scenarios in turn
//   npm run sim -- --seeds 500 --scenario lossy-4
//   npm run sim -- --seed 42 --scenario mixed-7  one run, replayed twice to check determinism
import { Command } from 'commander';
import { runSim, type SimResult } from '../test/sim/run.ts';
import { SCENARIOS, scenarioByName } from '../test/sim/scenarios.ts';

const program = new Command()
  .name('sim')
  .description('deterministic simulation of the PBFT replica')
  .option('--seeds <n>', 'how many seeded runs', '200')
  .option('--from <n>', 'first seed', '1')
  .option('--seed <s>', 'run exactly this seed')
  .option('--scenario <name>', `one scenario (${SCENARIOS.map((s) => s.name).join(', ')})`)
  .option('--verbose', 'print every run')
  .parse();
const opts = program.opts<{ seeds: string; from: string; seed?: string; scenario?: string; verbose?: boolean }>();

const only = opts.scenario ? scenarioByName(opts.scenario) : undefined;
if (opts.scenario && !only) {
  console.error(`unknown scenario ${opts.scenario}; known: ${SCENARIOS.map((s) => s.name).join(', ')}`);
  process.exit(2);
}

function line(r: SimResult): string {
  const s = r.stats;
  return `${r.ok ? 'ok  ' : 'FAIL'} ${r.scenario} seed ${r.seed}: heights ${Math.min(...s.heights)}..${Math.max(...s.heights)}, max view ${s.maxView}, ${s.messages} messages, recovered ${s.recoveryMs ?? 'never'} ms after the heal, ${s.wallMs} ms`;
}

if (opts.seed !== undefined) {
  const seed = Number(opts.seed);
  const scenario = only ?? SCENARIOS[seed % SCENARIOS.length]!;
  const a = runSim(seed, scenario);
  const b = runSim(seed, scenario);
  console.log(line(a));
  console.log(`drops: ${JSON.stringify(a.stats.drops)}`);
  console.log(`trace ${a.trace}`);
  for (const v of a.violations) console.log(`  ${v}`);
  if (a.trace !== b.trace) console.log(`NOT DETERMINISTIC: the second run's trace is ${b.trace}`);
  process.exit(a.ok && a.trace === b.trace ? 0 : 1);
}

const count = Number(opts.seeds);
const from = Number(opts.from);
const byScenario = new Map<string, { runs: number; failed: number; ms: number; recovery: number }>();
const failures: SimResult[] = [];
const started = Date.now();
for (let seed = from; seed < from + count; seed++) {
  const scenario = only ?? SCENARIOS[seed % SCENARIOS.length]!;
  const r = runSim(seed, scenario);
  const agg = byScenario.get(scenario.name) ?? { runs: 0, failed: 0, ms: 0, recovery: 0 };
  agg.runs++;
  agg.ms += r.stats.wallMs;
  agg.recovery = Math.max(agg.recovery, r.stats.recoveryMs ?? Infinity);
  if (!r.ok) {
    agg.failed++;
    failures.push(r);
    console.log(line(r));
    for (const v of r.violations.slice(0, 5)) console.log(`    ${v}`);
    console.log(`    replay: ${r.replay}`);
  } else if (opts.verbose) console.log(line(r));
  byScenario.set(scenario.name, agg);
}
console.log('\nscenario                      runs  failed  avg ms  worst recovery (simulated ms after the heal)');
for (const [name, a] of byScenario) console.log(`${name.padEnd(28)} ${String(a.runs).padStart(5)} ${String(a.failed).padStart(7)} ${String(Math.round(a.ms / a.runs)).padStart(7)}  ${a.recovery}`);
console.log(`\n${count} runs, ${failures.length} failed, ${((Date.now() - started) / 1000).toFixed(1)} s`);
process.exit(failures.length > 0 ? 1 : 0);
