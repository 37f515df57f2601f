// The engine of a one-validator cluster: the single validator proposes, signs and commits.
// Its certificate is a real one (one BLS signature over the commit message, quorum 1 of 1),
// so light clients check it exactly as they will check PBFT's. The PBFT issue replaces this
// file with the replica, run with n = 1.
import type { BlockPipeline } from './block-pipeline.ts';
import { BlockPipeline as Pipeline } from './block-pipeline.ts';
import { maxFaulty, quorumSize } from './chain/certificate.ts';
import type { ConsensusParams, Validator } from './chain/types.ts';
import { BlsSigner } from './crypto/bls.ts';
import { to0x } from './crypto/encoding.ts';
import type { ConsensusEngine } from './engine.ts';
import type { ConsensusStatus } from '../rpc/node-api.ts';

export interface SoloOptions {
  pipeline: BlockPipeline;
  validators: Validator[];
  index: number;
  blsSecretKey: Uint8Array;
  params: ConsensusParams;
  now?: () => number;
  onError?: (err: unknown) => void;
}

export class SoloEngine implements ConsensusEngine {
  private readonly signer: BlsSigner;
  private running = false;
  private loop: Promise<void> = Promise.resolve();
  private wake: (() => void) | null = null;
  private readonly now: () => number;

  constructor(private readonly o: SoloOptions) {
    if (o.validators.length !== 1) throw new Error(`the one-node engine runs a set of 1 validator, genesis has ${o.validators.length}`);
    this.signer = new BlsSigner(o.blsSecretKey);
    if (to0x(this.signer.publicKey) !== o.validators[0]!.blsPublicKey) throw new Error('this node\'s BLS key is not the validator key in genesis');
    this.now = o.now ?? Date.now;
  }

  async start(): Promise<void> {
    this.running = true;
    this.o.pipeline.pool.onAdded(() => this.wake?.());
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.wake?.();
    await this.loop;
  }

  joined(): boolean {
    return this.running;
  }

  validatorsAt(): Validator[] {
    return this.o.validators;
  }

  status(): ConsensusStatus {
    const n = this.o.validators.length;
    return {
      height: this.o.pipeline.head.header.number,
      view: 0,
      leader: this.o.validators[0]!.index,
      f: maxFaulty(n),
      quorum: quorumSize(n),
      validators: this.o.validators,
      lastCommitTime: this.o.pipeline.lastCommitTime,
    };
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done(): void {
        clearTimeout(t);
        resolve();
      }
      this.wake = done;
    });
  }

  /**
   * Cut a block when the pool holds a full block's worth, or when the oldest pending
   * transaction has waited blockTimeMs; an idle chain does not grow.
   */
  private async run(): Promise<void> {
    const { pipeline, params } = this.o;
    while (this.running) {
      const pool = pipeline.pool;
      if (pool.size === 0) {
        await this.sleep(1000);
        continue;
      }
      const waited = this.now() - pool.oldestAddedAt();
      if (pool.size < params.maxBlockTxs && pool.bytes < params.maxBlockBytes && waited < params.blockTimeMs) {
        await this.sleep(params.blockTimeMs - waited);
        continue;
      }
      try {
        const proposal = await pipeline.build({ proposer: this.o.index, timestamp: this.now(), validators: this.o.validators, maxTxs: params.maxBlockTxs, maxBytes: params.maxBlockBytes });
        if (!proposal) continue;
        const signature = this.signer.sign(Pipeline.commitMessageOf(proposal));
        await pipeline.commit(proposal, {
          number: proposal.block.header.number,
          blockHash: proposal.block.hash,
          view: 0,
          signers: [this.o.index],
          aggregateSignature: to0x(signature),
        });
      } catch (err) {
        // A failed write leaves the committed state as it was; stop rather than fork from it.
        this.running = false;
        this.o.onError?.(err);
      }
    }
  }
}
