// Runs every test file as its own process (uvu inside each), so that a crash or a leaked
// handle in one file cannot hide the results of another, and prints one closing line over
// the whole suite: "N passed, N failed, N skipped".
//   npm test                    the whole suite
//   npm test -- pool merkle     only files whose names contain one of the words
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = join(import.meta.dirname, '..');
const filters = process.argv.slice(2);
const fileTimeoutMs = Number(process.env.TEST_FILE_TIMEOUT_MS ?? 600_000);

function findTests(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return findTests(p);
    return e.name.endsWith('.test.ts') ? [p] : [];
  });
}

const files = findTests(join(root, 'test'))
  .filter((f) => filters.length === 0 || filters.some((w) => f.includes(w)))
  .sort();

interface FileResult {
  file: string;
  passed: number;
  failed: number;
  skipped: number;
  ms: number;
}

// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;]*m/g;

function runFile(file: string): Promise<FileResult> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', file], { cwd: root, env: { ...process.env, FORCE_COLOR: '0' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const collect = (chunk: Buffer) => {
      process.stdout.write(chunk);
      out += chunk.toString();
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    const timer = setTimeout(() => {
      out += `\n${relative(root, file)}: timed out after ${fileTimeoutMs} ms\n`;
      child.kill('SIGKILL');
    }, fileTimeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      const text = out.replace(ANSI, '');
      const num = (label: string) => Number(new RegExp(`^\\s*${label}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? NaN);
      const total = num('Total');
      const passed = num('Passed');
      const skipped = num('Skipped') || 0;
      // uvu's Total leaves skipped tests out already.
      let failed = Number.isNaN(total) ? 1 : total - passed;
      // A file that printed a summary but exited non-zero (an uncaught error after the tests) counts as one failure.
      if (failed === 0 && code !== 0) failed = 1;
      resolve({ file: relative(root, file), passed: Number.isNaN(passed) ? 0 : passed, failed, skipped, ms: Date.now() - started });
    });
  });
}

const results: FileResult[] = [];
for (const file of files) {
  console.log(`\n# ${relative(root, file)}`);
  results.push(await runFile(file));
}

console.log('\n# per file');
for (const r of results) console.log(`${r.failed ? 'FAIL' : 'ok  '} ${r.file}  ${r.passed} passed, ${r.failed} failed, ${r.skipped} skipped  (${(r.ms / 1000).toFixed(1)} s)`);
const sum = (k: 'passed' | 'failed' | 'skipped') => results.reduce((a, r) => a + r[k], 0);
console.log(`\n${sum('passed')} passed, ${sum('failed')} failed, ${sum('skipped')} skipped`);
process.exit(sum('failed') > 0 || files.length === 0 ? 1 : 0);
