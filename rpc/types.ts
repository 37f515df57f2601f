// The answer shapes of spec/rpc.md, shared by the server's method definitions and the client SDK.
import type { CommitCertificate, Header, Validator } from '../consensus/chain/types.ts';
import type { Receipt } from '../state/store/types.ts';
import type { TxEnvelope } from '../state/tx.ts';
import type { ConsensusStatus, PeerInfo } from './node-api.ts';

export type { CommitCertificate, ConsensusStatus, Header, PeerInfo, Receipt, TxEnvelope, Validator };

/** getBlockByNumber / getBlockByHash: every header field plus hash, view and the transactions. */
export interface BlockAnswer extends Header {
  hash: string;
  view: number;
  /** transaction hashes, or the decoded envelopes when includeTransactions was true */
  transactions: string[] | TxEnvelope[];
}

/** A header as newBlocks notifications carry it: the header fields plus its hash. */
export interface HeaderWithHash extends Header {
  hash: string;
}

export interface TransactionAnswer {
  hash: string;
  blockNumber: number;
  index: number;
  tx: TxEnvelope;
}

/** getTransactionProof (chain.md "What a light client does"). */
export interface TransactionProof {
  header: Header;
  certificate: CommitCertificate;
  tx: { index: number; hash: string; path: string[] };
  receipt: { index: number; receipt: Receipt; path: string[] };
}

export interface TotalTransactionCount {
  blockNumber: number;
  transactions: number;
  rejected: number;
}

export interface ClientVersion {
  version: string;
  chain: string;
  nodeId: string;
}

export interface SyncStatus {
  height: number;
  highestKnownHeight: number;
  syncing: boolean;
}

/** `query`'s second parameter: proves the caller's account (rpc.md). */
export interface QueryAuth {
  /** account id: 64 lowercase hex */
  from: string;
  /** ms since the epoch, within 60 s of the node's clock */
  timestamp: number;
  /** Ed25519 over UTF-8 of JCS({path, timestamp}), 128 lowercase hex */
  sig: string;
}

export interface QueryResult {
  height: number;
  value: unknown;
}
