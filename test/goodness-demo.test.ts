// `npm run demo` end to end, small: the demo starts its own one-node cluster (a real node in a
// child process), plays the whole travel scenario over JSON-RPC, prints the audit figures and
// stops the node. The test runs it as a user would and reads what it printed.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const ROOT = join(import.meta.dirname, '..');

test('the demo runs the scenario on its own cluster, and the audit figures balance', async () => {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'cluster', 'demo.ts'), '--users', '20'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (c) => (out += c));
  child.stderr.on('data', (c) => (out += c));
  const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
  const code = await new Promise<number | null>((r) => child.on('exit', r));
  clearTimeout(timer);
  assert.is(code, 0, out);
  for (let step = 1; step <= 9; step++) assert.match(out, new RegExp(`== ${step}\\. `), `step ${step} printed`);
  assert.match(out, /7 of 7 proposals executed/);
  assert.match(out, /20 accounts opened, 40 consents granted/);
  assert.match(out, /1 DUPLICATE_EVIDENCE/);
  assert.match(out, /✓ balances/);
  assert.match(out, /A citizen asking for the batch is refused with -32007/);
  assert.match(out, /rejected \(FROZEN/);
  assert.not.match(out, /✗|LEAK|WRONG/);
});

test.run();
