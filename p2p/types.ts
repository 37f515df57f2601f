// What the layers above p2p/ see of the network: validators by index, opaque bytes by channel.
// A simulation swaps in an in-memory implementation of `Transport`; the libp2p one is node.ts.

/**
 * The fixed set of channels. Each is its own libp2p protocol with its own long-lived stream per
 * peer and direction, and its own send queue, so that votes never wait behind transaction
 * batches or block downloads.
 *  - consensus: votes and proposals; small and latency-sensitive; sent first.
 *  - txs: transaction gossip batches (see tx-gossip.ts); oldest batches dropped when a peer lags.
 *  - sync: request/response for catch-up (blocks with certificates), plus one-way messages.
 */
export const CHANNELS = ['consensus', 'txs', 'sync'] as const;
export type Channel = (typeof CHANNELS)[number];

/** A validator as p2p/ knows it: its index in genesis, its libp2p peer id, where to dial it. */
export interface ValidatorPeer {
  index: number;
  /** base58btc peer id string, as in genesis.validators[].peerId */
  peerId: string;
  /** where to dial it (its announce address); without one we only accept its inbound dials */
  multiaddr?: string;
}

export interface PeerInfo {
  peerId: string;
  /** the configured dial address and the remote addresses of open connections */
  addresses: string[];
  validatorIndex: number;
  connected: boolean;
}

/**
 * Called synchronously for every message in arrival order per peer and channel. It must not
 * block: enqueue and return. A throw is logged and otherwise ignored.
 */
export type MessageHandler = (fromIndex: number, bytes: Uint8Array) => void;

/** Answers a sync request. A throw (or rejection) becomes an error reply to the requester. */
export type RequestHandler = (fromIndex: number, bytes: Uint8Array) => Uint8Array | Promise<Uint8Array>;

export interface Transport {
  /**
   * Queues `bytes` for one validator. Returns false when the message was dropped (unknown or
   * banned peer, message over the size limit); dropping is also counted in stats.
   */
  send(toIndex: number, channel: Channel, bytes: Uint8Array): boolean;
  /** Queues `bytes` for every other validator; returns how many queues took it. */
  broadcast(channel: Channel, bytes: Uint8Array): number;
  /** Adds a handler for a channel; returns a function that removes it. */
  onMessage(channel: Channel, handler: MessageHandler): () => void;
  /** The other validators (never this node) and whether each is connected now. */
  peers(): PeerInfo[];
  /** Sends a request on the sync channel; rejects on timeout, error reply, or a dropped peer. */
  request(toIndex: number, bytes: Uint8Array, timeoutMs: number): Promise<Uint8Array>;
  /** Sets the one handler that answers sync requests; returns a function that removes it. */
  onRequest(handler: RequestHandler): () => void;
  /**
   * Lowers a peer's score for misbehaviour the layer above found (a vote with a bad signature,
   * a malformed transaction batch). Enough of it disconnects the peer for a cool-down.
   */
  penalize(index: number, reason: string, weight?: number): void;
}

/** A request failed: the remote answered with an error, or it timed out, or the peer went away. */
export class P2PRequestError extends Error {
  override readonly name = 'P2PRequestError';
  constructor(
    message: string,
    readonly code: 'timeout' | 'remote-error' | 'dropped' | 'unknown-peer' | 'too-large' | 'stopped',
  ) {
    super(message);
  }
}
