// SignatureVerifier (DESIGN.md): verifies many Ed25519 signatures at once, in worker threads
// where that pays, and says when it is busy. Admission is the one place a transaction's
// signature is checked; on a 2-core machine, two workers verify about twice as fast as the
// main thread alone, and the main thread is left free for RPC, execution and storage.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { ed25519Verify, SODIUM_MODULE } from './ed25519.ts';

export interface SignatureJob {
  /** account id: 32-byte public key, lowercase hex */
  publicKey: string;
  message: Uint8Array;
  /** 64-byte signature, lowercase hex */
  signature: string;
}

/**
 * Who waits for a verification. 'block': a proposal's or a synced block's transaction that
 * consensus waits on; it goes ahead of everything queued. 'peer': a transaction gossip brought.
 * 'client': a client's transaction; it is the one refused first when verification falls behind.
 */
export type VerifyPriority = 'block' | 'peer' | 'client';

export interface SignatureVerifier {
  verify(job: SignatureJob, priority?: VerifyPriority): Promise<boolean>;
  /** False while the queue is over its bound for work of this priority: callers should push back (-32002), not queue more. */
  canAcceptWork(priority?: VerifyPriority): boolean;
  /** verifications queued or in a worker: work that can wait is offered only when this is low */
  backlog(): number;
  /** signatures verified so far (a job promoted from one queue to another counts once) */
  readonly completed: number;
  close(): Promise<void>;
}

/** Verifies on the calling thread: for tests and for machines with one core. */
export class InlineVerifier implements SignatureVerifier {
  completed = 0;
  async verify(job: SignatureJob, _priority?: VerifyPriority): Promise<boolean> {
    this.completed++;
    return ed25519Verify(job.publicKey, job.message, job.signature);
  }
  canAcceptWork(_priority?: VerifyPriority): boolean {
    return true;
  }
  backlog(): number {
    return 0;
  }
  async close(): Promise<void> {}
}

// The worker is plain JavaScript, given as source, so it loads the same way whether the node
// runs from TypeScript through tsx or from compiled files. It verifies as ed25519Verify does
// (libsodium, ed25519.ts), loading sodium-native from the path the node resolved.
const WORKER_NICE = 10;
const WORKER_SOURCE = `const NICE = ${WORKER_NICE};
const { parentPort, workerData } = require('node:worker_threads');
const sodium = require(workerData.sodium);
// Below the node's main thread: consensus, execution and commits come before admitting more.
// On Linux a thread's nice value is its own (setpriority on pid 0 changes the calling thread).
try { require('node:os').setPriority(0, NICE); } catch {}
// Named for top, perf and /proc (Linux; elsewhere this does nothing): all of a node's threads are "node" otherwise.
try { require('node:fs').writeFileSync('/proc/thread-self/comm', 'gdn:verifier'); } catch {}
const HEX_KEY = /^[0-9a-f]{64}$/;
const HEX_SIG = /^[0-9a-f]{128}$/;
parentPort.on('message', ({ id, publicKeys, messages, signatures }) => {
  const results = new Uint8Array(publicKeys.length);
  for (let i = 0; i < publicKeys.length; i++) {
    const key = publicKeys[i];
    const sig = signatures[i];
    if (!HEX_KEY.test(key) || !HEX_SIG.test(sig)) continue;
    results[i] = sodium.crypto_sign_verify_detached(Buffer.from(sig, 'hex'), messages[i], Buffer.from(key, 'hex')) ? 1 : 0;
  }
  parentPort.postMessage({ id, results }, [results.buffer]);
});
`;

interface Pending {
  job: SignatureJob;
  resolve: (ok: boolean) => void;
  /** taken for a worker already (a promoted job sits in two queues until one takes it) */
  taken?: boolean;
}

/** First in, first out, with O(1) takes: the array is compacted only once its head has moved far. */
class JobQueue {
  private items: Pending[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(p: Pending): void {
    this.items.push(p);
  }

  /** Moves jobs not taken yet into `out` until it holds `n`, marking them taken. */
  takeInto(out: Pending[], n: number): void {
    let i = this.head;
    for (; i < this.items.length && out.length < n; i++) {
      const p = this.items[i]!;
      if (p.taken) continue;
      p.taken = true;
      out.push(p);
    }
    this.head = i;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head > 4096) {
      this.items.splice(0, this.head);
      this.head = 0;
    }
  }
}

/**
 * A pool of worker threads. Jobs wait in three queues on the main thread, served in order:
 * blocks' (consensus waits on them), then peers' (transactions the cluster already holds), then
 * clients' (new work, the first to be refused). They go to the workers in chunks (one message
 * per chunk, so the cost of crossing threads is paid per batch, not per signature), with at
 * most `maxInFlightPerWorker` jobs in a worker at a time. Sending everything at once, as this did
 * first, put a proposal's transactions behind tens of thousands of admissions in the workers'
 * own message queues, and consensus waited seconds for them.
 */
export class WorkerVerifier implements SignatureVerifier {
  private readonly workers: Worker[] = [];
  private readonly inFlight = new Map<number, Pending[]>();
  private readonly busy: number[] = [];
  private readonly urgent = new JobQueue();
  private readonly fromPeers = new JobQueue();
  private readonly fromClients = new JobQueue();
  private nextId = 1;
  completed = 0;
  private scheduled = false;
  private queued = 0;

  /**
   * @param maxQueued jobs waiting or in a worker above which admissions are refused
   * @param maxClientQueued jobs queued above which clients' transactions are refused while
   *   peers' still queue: a client at full speed must not make this node drop what gossip brings
   *   (each dropped one is fetched again when it is proposed), and the queue stays short enough
   *   (about a quarter of a second of two workers) that a proposal's transactions do not wait long
   */
  constructor(
    readonly threads = Math.max(1, availableParallelism()),
    private readonly maxQueued = 50_000,
    private readonly maxClientQueued = 4_096,
    private readonly maxInFlightPerWorker = 512,
  ) {
    for (let i = 0; i < threads; i++) {
      this.workers.push(this.spawn(i));
      this.busy.push(0);
    }
  }

  private closing = false;

  private spawn(index: number): Worker {
    const w = new Worker(WORKER_SOURCE, { eval: true, workerData: { sodium: SODIUM_MODULE } });
    w.on('message', (m: { id: number; results: Uint8Array }) => this.settle(index, m));
    w.on('error', () => undefined);
    w.on('exit', () => this.replace(index, w));
    w.unref();
    return w;
  }

  canAcceptWork(priority: VerifyPriority = 'peer'): boolean {
    if (priority === 'block') return true;
    return this.queued < (priority === 'client' ? Math.min(this.maxClientQueued, this.maxQueued) : this.maxQueued);
  }

  backlog(): number {
    return this.queued;
  }

  verify(job: SignatureJob, priority: VerifyPriority = 'peer'): Promise<boolean> {
    if (priority === 'block') {
      // The same signature already waiting as an admission: it moves ahead, checked once.
      const queued = this.waitingBySignature.get(job.signature);
      if (queued && !queued.taken && queued.job.publicKey === job.publicKey && Buffer.from(queued.job.message).equals(job.message)) {
        this.urgent.push(queued);
        this.schedule();
        return new Promise((resolve) => {
          const first = queued.resolve;
          queued.resolve = (ok) => {
            first(ok);
            resolve(ok);
          };
        });
      }
    }
    return new Promise((resolve) => {
      const pending: Pending = { job, resolve };
      if (priority === 'block') this.urgent.push(pending);
      else {
        (priority === 'peer' ? this.fromPeers : this.fromClients).push(pending);
        this.waitingBySignature.set(job.signature, pending);
      }
      this.queued++;
      this.schedule();
    });
  }

  /** admissions still on the main thread, by signature, for a block that needs one of them now */
  private readonly waitingBySignature = new Map<string, Pending>();

  /** Jobs that arrive in one tick (a JSON-RPC batch, a gossip batch) go out together. */
  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.dispatch();
    });
  }

  private waiting(): number {
    return this.urgent.length + this.fromPeers.length + this.fromClients.length;
  }

  private take(n: number): Pending[] {
    const out: Pending[] = [];
    this.urgent.takeInto(out, n);
    this.fromPeers.takeInto(out, n);
    this.fromClients.takeInto(out, n);
    for (const p of out) this.waitingBySignature.delete(p.job.signature);
    return out;
  }

  private dispatch(): void {
    // Least busy first; each worker gets an even share of what waits, up to its free room.
    const order = this.workers.map((_, i) => i).sort((a, b) => this.busy[a]! - this.busy[b]!);
    for (let k = 0; k < order.length; k++) {
      const w = order[k]!;
      const room = this.maxInFlightPerWorker - this.busy[w]!;
      const share = Math.ceil(this.waiting() / (order.length - k));
      const chunk = this.take(Math.min(room, share));
      if (chunk.length === 0) continue;
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
    this.completed += chunk.length;
    chunk.forEach((p, i) => p.resolve(m.results[i] === 1));
    if (this.waiting() > 0) this.dispatch();
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
    if (this.waiting() > 0) this.schedule();
  }

  private readonly owner = new Map<number, number>();

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
