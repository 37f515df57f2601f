// The key-value machine's load: `key=value` transactions (state/kv-machine.ts), unsigned, so the
// run measures the consensus engine, the pool and storage and nothing else. Keys are unique to
// the run, so that runs against the same chain never collide.
import { randomBytes } from 'node:crypto';
import { to0x, utf8 } from '../../../consensus/crypto/encoding.ts';
import { txHash } from '../../../state/tx.ts';
import type { PreparedTx } from '../driver.ts';
import type { Workload, WorkloadContext } from './types.ts';

export class KvWorkload implements Workload {
  readonly name = 'kv';
  readonly signed = false;

  /** @param valueBytes size of each value (hex characters) */
  constructor(private readonly valueBytes = 32) {}

  async prepare(_ctx: WorkloadContext, count: number): Promise<PreparedTx[]> {
    const run = randomBytes(6).toString('base64url');
    const value = randomBytes(Math.ceil(this.valueBytes / 2)).toString('hex').slice(0, this.valueBytes);
    const out: PreparedTx[] = new Array(count);
    for (let i = 0; i < count; i++) {
      const bytes = utf8(`bench/${run}/${i}=${value}`);
      out[i] = { raw: to0x(bytes), hash: txHash(bytes) };
    }
    return out;
  }
}
