// What a workload gives the driver: its setup, done before the clock starts (accounts, roles,
// schemes, funding, consent), and its transactions, built and signed before the clock starts.
import type { GoodnessClient } from '../../../rpc/client.ts';
import type { PreparedTx } from '../driver.ts';

export interface WorkloadContext {
  urls: string[];
  clients: GoodnessClient[];
  chain: string;
  log: (line: string) => void;
}

export interface Workload {
  readonly name: 'kv' | 'goodness';
  /** true when every transaction carries an Ed25519 signature (each node verifies it once) */
  readonly signed: boolean;
  /** Sets the chain up for the run and returns `count` transactions ready to send. */
  prepare(ctx: WorkloadContext, count: number): Promise<PreparedTx[]>;
}

/** The workload cannot run against this chain (e.g. the ledger lacks a transaction type): the reason. */
export class WorkloadUnavailable extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WorkloadUnavailable';
  }
}
