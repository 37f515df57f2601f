// Execution outcomes, read once after the run (off the measured path): a committed transaction
// whose execution the state machine refused has a receipt with status "rejected" (rpc.md). The
// chain's own count of rejected transactions says whether there is anything to look for.
import type { GoodnessClient } from '../../rpc/client.ts';
import type { Receipt } from '../../rpc/types.ts';

const RECEIPTS_PER_BATCH = 500;

/** Receipts of `hashes` (null for one the node does not know), in JSON-RPC batches. */
export async function fetchReceipts(client: GoodnessClient, hashes: string[]): Promise<(Receipt | null)[]> {
  const out: (Receipt | null)[] = new Array(hashes.length).fill(null);
  for (let start = 0; start < hashes.length; start += RECEIPTS_PER_BATCH) {
    const slice = hashes.slice(start, start + RECEIPTS_PER_BATCH);
    const answers = await client.batch(slice.map((h) => ({ method: 'getTransactionReceipt' as const, params: [h] as [string] })));
    answers.forEach((a, k) => {
      if (!a.ok) throw a.error;
      out[start + k] = a.result as Receipt | null;
    });
  }
  return out;
}
