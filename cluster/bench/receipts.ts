// Execution outcomes, read once after the run (off the measured path): a committed transaction
// whose execution the state machine refused has a receipt with status "rejected" (rpc.md). The
// chain's own count of rejected transactions says whether there is anything to look for.
import type { GoodnessClient } from '../../rpc/client.ts';
import type { Receipt } from '../../rpc/types.ts';

const RECEIPTS_PER_BATCH = 500;

/**
 * Waits until the node has committed `height`. The driver learns of a block from whichever node
 * tells of it first; the node whose receipts are read may commit it a moment later (a replica
 * of 5 in test/membership.test.ts read null receipts this way).
 */
export async function waitForHeight(client: GoodnessClient, height: number, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const at = await client.getBlockNumber();
    if (at >= height) return;
    if (Date.now() > deadline) throw new Error(`the node is at height ${at}, still short of ${height} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

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
