// What the node asks of its consensus engine. The PBFT driver (pbft-engine.ts) fills it for
// every cluster size: a one-node cluster is PBFT with n = 1, with no second code path.
import type { Validator } from './chain/types.ts';
import type { ConsensusStatus } from '../rpc/node-api.ts';

export interface ConsensusEngine {
  start(): Promise<void>;
  /** Stops proposing; resolves once no block is half-way through commit. */
  stop(): Promise<void>;
  status(): ConsensusStatus;
  /** The validator set that signs block `height`. */
  validatorsAt(height: number): Validator[];
  /** True once the engine takes part in its cluster (for /health). */
  joined(): boolean;
}
