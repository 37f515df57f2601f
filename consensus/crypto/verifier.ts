// SignatureVerifier (DESIGN.md): verifies many Ed25519 signatures at once, in worker threads
// where that pays, and says when it is busy. Admission is the one place a transaction's
// signature is checked; on a 2-core machine, two workers verify about twice as fast as the
// main thread alone, and the main thread is left free for RPC, execution and storage.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { ed25519Verify } from './ed25519.ts';

export interface SignatureJob {
  /** account id: 32-byte public key, lowercase hex */
  publicKey: string;
  message: Uint8Array;
  /** 64-byte signature, lowercase hex */
  signature: string;
}

export interface SignatureVerifier {
  verify(job: SignatureJob): Promise<boolean>;
  /** False while the queue is over its bound: callers should push back (-32002), not queue more. */
  canAcceptWork(): boolean;
  close(): Promise<void>;
}

/** Verifies on the calling thread: for tests and for machines with one core. */
export class InlineVerifier implements SignatureVerifier {
  async verify(job: SignatureJob): Promise<boolean> {
    return ed25519Verify(job.publicKey, job.message, job.signature);
  }
  canAcceptWork(): boolean {
    return true;
  }
  async close(): Promise<void> {}
}

// The worker is plain JavaScript on node:crypto, given as source, so it loads the same way
// whether the node runs from TypeScript through tsx or from compiled files.
const WORKER_NICE = 10;
const WORKER_SOURCE = `const NICE = ${WORKER_NICE};
const { parentPort } = require('node:worker_threads');
const { createPublicKey, verify } = require('node:crypto');
// Below the node's main thread: consensus, execution and commits come before admitting more.
// On Linux a thread's nice value is its own (setpriority on pid 0 changes the calling thread).
try { require('node:os').setPriority(0, NICE); } catch {}
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const keys = new Map();
function keyOf(hex) {
  let k = keys.get(hex);
  if (k) return k;
  if (!/^[0-9a-f]{64}$/.test(hex)) return null;
  try { k = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, Buffer.from(hex, 'hex')]), format: 'der', type: 'spki' }); } catch { return null; }
  if (keys.size >= 50000) keys.delete(keys.keys().next().value);
  keys.set(hex, k);
  return k;
}
parentPort.on('message', ({ id, publicKeys, messages, signatures }) => {
  const results = new Uint8Array(publicKeys.length);
  for (let i = 0; i < publicKeys.length; i++) {
    const key = keyOf(publicKeys[i]);
    const sig = signatures[i];
    if (!key || !/^[0-9a-f]{128}$/.test(sig)) continue;
    try { results[i] = verify(null, messages[i], key, Buffer.from(sig, 'hex')) ? 1 : 0; } catch { results[i] = 0; }
  }
  parentPort.postMessage({ id, results }, [results.buffer]);
});
`;

interface Pending {
  job: SignatureJob;
  resolve: (ok: boolean) => void;
}

/**
 * A pool of worker threads. Jobs that arrive in one tick (a JSON-RPC batch) are cut into one
 * message per worker, so the cost of crossing threads is paid per batch, not per signature.
 */
export class WorkerVerifier implements SignatureVerifier {
  private readonly workers: Worker[] = [];
  private readonly inFlight = new Map<number, Pending[]>();
  private readonly busy: number[] = [];
  private queue: Pending[] = [];
  private nextId = 1;
  private scheduled = false;
  private queued = 0;

  constructor(
    readonly threads = Math.max(1, availableParallelism()),
    private readonly maxQueued = 50_000,
  ) {
    for (let i = 0; i < threads; i++) {
      this.workers.push(this.spawn(i));
      this.busy.push(0);
    }
  }

  private closing = false;

  private spawn(index: number): Worker {
    const w = new Worker(WORKER_SOURCE, { eval: true });
    w.on('message', (m: { id: number; results: Uint8Array }) => this.settle(index, m));
    w.on('error', () => undefined);
    w.on('exit', () => this.replace(index, w));
    w.unref();
    return w;
  }

  canAcceptWork(): boolean {
    return this.queued < this.maxQueued;
  }

  verify(job: SignatureJob): Promise<boolean> {
    return new Promise((resolve) => {
      this.queue.push({ job, resolve });
      this.queued++;
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.dispatch());
      }
    });
  }

  private dispatch(): void {
    this.scheduled = false;
    const jobs = this.queue;
    this.queue = [];
    if (jobs.length === 0) return;
    // Spread the tick's jobs over the workers, least busy first.
    const order = this.workers.map((_, i) => i).sort((a, b) => this.busy[a]! - this.busy[b]!);
    const per = Math.ceil(jobs.length / order.length);
    for (let k = 0; k < order.length && k * per < jobs.length; k++) {
      const chunk = jobs.slice(k * per, (k + 1) * per);
      const w = order[k]!;
      const id = this.nextId++;
      this.inFlight.set(id, chunk);
      this.owner.set(id, w);
      // A worker holds the process open only while it owes answers.
      if (this.busy[w] === 0) this.workers[w]!.ref();
      this.busy[w]! += chunk.length;
      this.workers[w]!.postMessage({
        id,
        publicKeys: chunk.map((p) => p.job.publicKey),
        messages: chunk.map((p) => p.job.message),
        signatures: chunk.map((p) => p.job.signature),
      });
    }
  }

  private settle(worker: number, m: { id: number; results: Uint8Array }): void {
    const chunk = this.inFlight.get(m.id);
    if (!chunk) return;
    this.inFlight.delete(m.id);
    this.owner.delete(m.id);
    this.busy[worker]! -= chunk.length;
    if (this.busy[worker] === 0) this.workers[worker]!.unref();
    this.queued -= chunk.length;
    chunk.forEach((p, i) => p.resolve(m.results[i] === 1));
  }

  /**
   * A worker that dies fails closed: what it held verifies as false, never as true, and a
   * fresh worker takes its place.
   */
  private replace(index: number, dead: Worker): void {
    if (this.closing || this.workers[index] !== dead) return;
    for (const [id, chunk] of this.inFlight) {
      if (this.owner.get(id) !== index) continue;
      this.inFlight.delete(id);
      this.owner.delete(id);
      this.queued -= chunk.length;
      chunk.forEach((p) => p.resolve(false));
    }
    this.busy[index] = 0;
    this.workers[index] = this.spawn(index);
  }

  private readonly owner = new Map<number, number>();

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
