// What the JSON-RPC server needs from a running node, beyond the chain store. The node
// implements it; tests may implement it over a real node too. Kept narrow so that RPC never
// reaches into consensus or the pool directly.
import type { Header, Validator } from '../consensus/chain/types.ts';
import type { QueryAnswer } from '../state/machine.ts';
import type { ChainReader, Receipt, StoredBlock } from '../state/store/types.ts';

/** Admission outcome of sendTransaction, mapped onto rpc.md error codes by the server. */
export type SubmitResult =
  | { ok: true; hash: string }
  /** -32001 refused by the state machine (data: {code, log}) */
  | { ok: false; error: 'refused'; code: number; log: string }
  /** -32002 pool full: back off and retry */
  | { ok: false; error: 'pool-full'; log: string }
  /** -32003 duplicate hash or (from, nonce) */
  | { ok: false; error: 'duplicate'; log: string };

export interface ConsensusStatus {
  height: number;
  view: number;
  leader: number;
  f: number;
  quorum: number;
  validators: Validator[];
  lastCommitTime: number | null;
}

export interface PeerInfo {
  peerId: string;
  addresses: string[];
  validatorIndex: number | null;
}

export interface NodeApi {
  readonly chain: string;
  readonly nodeId: string;
  readonly version: string;
  readonly store: ChainReader;
  /** admission: size, duplicates (pool and committed), the state machine's checkTx, pool limits */
  submitTx(bytes: Uint8Array): Promise<SubmitResult>;
  /**
   * Why a client's transaction of `size` bytes would be refused with -32002 now, asked before it
   * is decoded or hashed (the log); null when it may be admitted. Optional: without it every
   * transaction goes to submitTx.
   */
  clientPoolFull?(size: number): string | null;
  pendingCount(): number;
  /** the validator set that signs block `height` */
  validatorsAt(height: number): Validator[];
  consensusStatus(): ConsensusStatus;
  syncStatus(): { height: number; highestKnownHeight: number; syncing: boolean };
  peers(): PeerInfo[];
  /** true once the node has joined its cluster (GET /health answers 200) */
  healthy(): boolean;
  /** Prometheus text for GET /metrics */
  metrics(): Promise<string>;
  query(path: string, caller: string | null): QueryAnswer;
  /** calls back with each committed block, after it is durable; returns an unsubscribe function */
  onBlock(listener: (block: StoredBlock, receipts: Receipt[]) => void): () => void;
}

export type { Header };
