// Shapes of what the chain store keeps, as served over JSON-RPC.
import type { CommitCertificate, Event, Header } from '../../consensus/chain/types.ts';

/** A committed block as stored: the header, its hash, the view it was committed in, its transactions' hashes. */
export interface StoredBlock {
  header: Header;
  hash: string;
  view: number;
  txHashes: string[];
}

/** A receipt as `getTransactionReceipt` answers it (rpc.md). */
export interface Receipt {
  hash: string;
  blockNumber: number;
  index: number;
  status: 'ok' | 'rejected';
  code: number;
  log: string;
  events: Event[];
}

export interface StoredTx {
  blockNumber: number;
  index: number;
  bytes: Uint8Array;
}

export interface TxTotals {
  transactions: number;
  rejected: number;
}

/** Everything one committed block writes, in one atomic batch. */
export interface BlockCommit {
  block: StoredBlock;
  certificate: CommitCertificate;
  txs: Uint8Array[];
  receipts: Receipt[];
  stateWrites: [Uint8Array, Uint8Array | null][];
  /** engine records that must change with this very block (the validator schedule), by name */
  meta?: { name: string; value: unknown }[];
}

/** Read side of the chain store: what RPC and sync need. */
export interface ChainReader {
  /** height of the latest committed block (0: only genesis) */
  latestHeight(): number;
  getBlock(height: number): Promise<StoredBlock | null>;
  getHeightByHash(hash: string): Promise<number | null>;
  getCertificate(height: number): Promise<CommitCertificate | null>;
  getTx(hash: string): Promise<StoredTx | null>;
  hasTx(hash: string): Promise<boolean>;
  getReceipt(hash: string): Promise<Receipt | null>;
  /** receipts of a block in block order (for receipt proofs) */
  getBlockReceipts(height: number): Promise<Receipt[]>;
  totals(): TxTotals;
}
