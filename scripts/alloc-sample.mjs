// Preload for `ALLOC=1 scripts/profile-cluster.ts` (diagnosis only, not part of the suite): V8's
// sampling heap profiler in a node's main thread, counting every allocation, those the collector
// has freed since included (a node's garbage is what costs it: young-generation collections
// copy what survives, and their number follows the bytes allocated). The first SIGUSR2 starts
// it, the next (or exit) writes ALLOC_DIR/alloc.PID.heapprofile. Plain JavaScript: it loads
// before tsx is registered.
import { Session } from 'node:inspector';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isMainThread } from 'node:worker_threads';

const dir = process.env.ALLOC_DIR ?? '/tmp/prof';
if (isMainThread && process.argv[2] === 'node') {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `alloc.${process.pid}.ready`), '');
  const session = new Session();
  session.connect();
  let state = 'idle';
  const stop = () => {
    if (state !== 'sampling') return;
    state = 'done';
    session.post('HeapProfiler.stopSampling', (err, result) => {
      if (!err) writeFileSync(join(dir, `alloc.${process.pid}.heapprofile`), JSON.stringify(result.profile));
    });
  };
  process.on('SIGUSR2', () => {
    if (state === 'idle') {
      state = 'sampling';
      // One sample per 16 KiB allocated on average: enough samples in a 20 s run to rank call sites.
      session.post('HeapProfiler.startSampling', { samplingInterval: 16384, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
    } else stop();
  });
  process.on('exit', stop);
}
