// Where a whole machine's CPU went, from Linux perf's samples (diagnosis only, not part of the
// suite). V8's --cpu-prof samples one thread's wall clock: a function that is preempted while it
// runs (four nodes and some twenty threads on two cores) is charged for the time it waited, and
// collector, verifier, writer and RocksDB threads are not in it. `perf record -a` samples what
// each core actually ran, native code included.
//   perf record -F 499 -a -g -o perf.data -- sleep 15      (while the cluster is under load)
//   perf script -i perf.data -F pid,tid,comm,ip,sym,dso | npx node --import tsx scripts/perf-categories.ts
// `scripts/profile-cluster.ts` with PERF=SECONDS does both. Prints the share of all samples by
// kind of thread and by category: the first frame from the leaf up that matches a category.
// Categories use native symbols only (OpenSSL, V8's collector, RocksDB, the kernel): perf names
// JIT-compiled JavaScript from /tmp/perf-PID.map, whose addresses V8 reuses as code is
// recompiled, so JavaScript names in these stacks can be wrong and are not used.
import { createInterface } from 'node:readline';

const CATEGORIES: [string, RegExp][] = [
  ['Ed25519 verification', /sodium-native|ossl_ed25519|ed25519_digest_verify/], // libsodium's frames end its stacks (no frame pointers)
  ['BLS (blst)', /blst/], // its binary is stripped: frames name only the library
  ['V8 young-generation GC', /Scaveng|MinorGCJob/],
  ['V8 old-generation GC', /ConcurrentMarking|MarkCompact|IncrementalMarking|MarkingVisitor|MarkingBarrier/],
  ['V8 sweeping', /Sweeper|ArrayBufferSweeper/],
  ['V8 allocation slow path', /HeapAllocator|Heap::AllocateRaw|FreeList|MemoryAllocator|Heap::CollectGarbage/],
  ['V8 JIT compiler', /compiler::|turboshaft|maglev|Maglev|baseline::|Compiler::/],
  ['JSON.stringify', /JsonStringif/],
  ['JSON.parse', /JsonParse/],
  ['SHA-256', /sha256_block|EVP_Digest|OneShotDigest/],
  ['RocksDB', /rocksdb/],
  ['Map and Set lookups', /OrderedHash|SetPrototype|MapPrototype|GetSimpleHash|ComputeAndSetRawHash/],
  ['page faults (fresh memory)', /exc_page_fault|clear_page/],
  ['file writes (kernel)', /vfs_write|ext4_|generic_perform_write/],
  ['network (kernel)', /tcp_|sock_|inet_|__sys_sendto|__sys_recvfrom|ip_finish|ip_rcv/],
  ['scheduler and futex', /futex|schedule|finish_task_switch|epoll/],
  ['other system calls', /entry_SYSCALL/],
  ['memcpy', /memmove|memcpy/],
  ['malloc', /malloc|_int_free|cfree|unlink_chunk/],
  ['string encoding', /StringBytes|hexWrite|hexSlice|Utf8|utf8|latin1/],
  ['regular expressions', /^RegExp/],
  ['JavaScript (JIT code)', /^JS:/],
  ['JavaScript (V8 builtins)', /^Builtins_/],
];

interface Sample {
  comm: string;
  pid: number;
  tid: number;
  frames: string[];
}

function threadKind(s: Sample): string {
  // A node names its own workers (gdn:verifier, gdn:writer); older nodes leave them "node".
  if (s.comm.startsWith('gdn:')) return `node ${s.comm.slice(4)} threads`;
  if (s.comm !== 'node') return s.comm.replace(/\/\d+$/, '').replace(/-.*$/, '');
  if (s.pid === s.tid) return 'node main threads';
  const stack = s.frames.join(' ');
  // before the Worker test: V8's DefaultJobWorker::Run would match it too
  if (stack.includes('PlatformWorkerThread')) return "V8's helper threads (GC, compiler)";
  if (stack.includes('worker::Worker::Run') || stack.includes('sodium-native')) return 'node worker threads (verifiers, writer)';
  return 'other node threads';
}

function category(frames: string[]): string {
  for (const frame of frames) for (const [name, pattern] of CATEGORIES) if (pattern.test(frame)) return name;
  return 'other';
}

async function readSamples(): Promise<Sample[]> {
  const samples: Sample[] = [];
  let current: Sample | null = null;
  for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
    if (line.trim() === '') {
      if (current) samples.push(current);
      current = null;
      continue;
    }
    const head = /^\s*(\S.*?)\s+(\d+)\/(\d+)\s*$/.exec(line);
    if (head && !line.startsWith('\t')) {
      current = { comm: head[1]!, pid: Number(head[2]), tid: Number(head[3]), frames: [] };
      continue;
    }
    // a frame: "<address> <symbol> (<object>)", the object kept for stripped libraries
    const frame = /^\s*[0-9a-f]+\s+(.*)$/.exec(line);
    if (current && frame) current.frames.push(frame[1]!);
  }
  if (current) samples.push(current);
  return samples;
}

function table(title: string, counts: Map<string, number>, total: number): string {
  const rows = [...counts].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${((100 * v) / total).toFixed(1).padStart(6)}%  ${k}`);
  return [title, ...rows].join('\n');
}

const samples = await readSamples();
if (samples.length === 0) {
  console.error('no samples on standard input: pipe in `perf script -F pid,tid,comm,ip,sym` of a `perf record -g` run');
  process.exit(1);
}
const byThread = new Map<string, number>();
const byCategory = new Map<string, number>();
for (const s of samples) {
  const kind = threadKind(s);
  byThread.set(kind, (byThread.get(kind) ?? 0) + 1);
  const cat = category(s.frames);
  byCategory.set(cat, (byCategory.get(cat) ?? 0) + 1);
}
console.log(`${samples.length} samples`);
console.log(table('\nby thread:', byThread, samples.length));
console.log(table('\nby category (first match from the leaf up):', byCategory, samples.length));
