#!/usr/bin/env node
// The `goodness` command. libp2p 3 needs Node >= 22 (STACK.md); on an older Node this file
// re-runs itself on the Node 22 that the `node` devDependency installs, so that `goodness`
// works whatever `node` is first on PATH. On Node >= 22 it loads tsx and runs cluster/cli.ts.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const REQUIRED_MAJOR = 22;
const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
const major = Number(process.versions.node.split('.')[0]);

if (major < REQUIRED_MAJOR) {
  reexecOnBundledNode();
} else {
  const { register } = await import('tsx/esm/api');
  register();
  const cli = await import(pathToFileURL(join(packageRoot, 'cluster', 'cli.ts')).href);
  await cli.main(process.argv);
}

function bundledNode() {
  // Relative to the package, not the cwd: `goodness` may be run from anywhere.
  const candidates = [join(packageRoot, 'node_modules', '.bin', 'node'), join(packageRoot, 'node_modules', 'node', 'bin', 'node')];
  return candidates.find((path) => existsSync(path));
}

function reexecOnBundledNode() {
  const node = bundledNode();
  if (!node) {
    process.stderr.write(
      `goodness needs Node.js ${REQUIRED_MAJOR} or newer (libp2p 3 does not run on ${process.version}),\n` +
        `and no Node ${REQUIRED_MAJOR} was found in ${join(packageRoot, 'node_modules')}.\n` +
        `Run \`npm install\` in ${packageRoot} (it installs Node ${REQUIRED_MAJOR} as a devDependency), or put Node ${REQUIRED_MAJOR}+ on your PATH.\n`,
    );
    process.exit(1);
  }
  const child = spawn(node, [...process.execArgv, ...process.argv.slice(1)], { stdio: 'inherit' });
  // Ctrl-C and a closed terminal signal the whole process group, so the child already gets
  // SIGINT and SIGHUP itself: the parent only stays alive for its exit code. SIGTERM is usually
  // sent to one pid (a service manager), so it is passed on.
  const stayAlive = () => {};
  const forwardTerm = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  };
  process.on('SIGINT', stayAlive);
  process.on('SIGHUP', stayAlive);
  process.on('SIGTERM', forwardTerm);
  child.on('error', (err) => {
    process.stderr.write(`goodness: could not start ${node}: ${err.message}\n`);
    process.exit(1);
  });
  child.on('exit', (code, signal) => {
    if (signal) {
      // Die of the same signal, so that the caller sees what the child saw.
      process.removeListener('SIGINT', stayAlive);
      process.removeListener('SIGHUP', stayAlive);
      process.removeListener('SIGTERM', forwardTerm);
      process.kill(process.pid, signal);
    } else {
      process.exit(code ?? 1);
    }
  });
}
