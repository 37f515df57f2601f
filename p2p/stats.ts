// Counters of the p2p layer as plain objects, so the node can export them as Prometheus metrics
// (labels: peer, channel, reason) without p2p/ depending on prom-client.
import { CHANNELS, type Channel } from './types.ts';

export interface ChannelCounter {
  msgs: number;
  bytes: number;
}

/** Why an outbound message was dropped instead of sent. */
export type DropReason = 'queue_full' | 'too_large' | 'peer_banned' | 'peer_removed' | 'stopped';

export interface RequestCounters {
  /** requests we sent */
  sent: number;
  timedOut: number;
  /** error replies we received */
  failed: number;
  /** replies that arrived after their request timed out */
  lateResponses: number;
  /** requests from this peer we answered (with data or an error) */
  served: number;
  /** requests from this peer refused because too many were in flight */
  refusedBusy: number;
}

export interface PeerCounters {
  sent: Record<Channel, ChannelCounter>;
  received: Record<Channel, ChannelCounter>;
  dropped: Record<Channel, Partial<Record<DropReason, number>>>;
  /**
   * Misbehaviour by channel and reason (oversized_frame, malformed_frame, read_timeout,
   * unexpected_data); `app` holds the reasons given to penalize() by the layers above.
   */
  faults: Record<Channel | 'app', Record<string, number>>;
  requests: RequestCounters;
  connects: number;
  disconnects: number;
  dialFailures: number;
  /** duplicate connections (both sides dialled at once) that we closed */
  duplicatesClosed: number;
  streamOpenFailures: number;
  bans: number;
}

export interface PeerStats extends PeerCounters {
  index: number;
  peerId: string;
  connected: boolean;
  /** open connections (normally 1; 2 for a moment while a duplicate is closed) */
  connections: number;
  score: number;
  /** ms timestamp until which the peer is refused, or null */
  bannedUntil: number | null;
  queued: Record<Channel, ChannelCounter>;
}

export interface P2PStats {
  peerId: string;
  /** this node's validator index, or null if it is not in the validator set */
  selfIndex: number | null;
  peers: PeerStats[];
  /** connections and streams refused, by reason (not_validator, banned, self_index) */
  refused: { connections: Record<string, number>; streams: Record<string, number> };
  /** the most recent refused peer ids with their counts (bounded) */
  refusedPeers: Record<string, number>;
  /** inbound TCP connections that closed before completing the Noise handshake (garbage, scans) */
  inboundHandshakeFailures: number;
}

function perChannel<T>(make: () => T): Record<Channel, T> {
  return Object.fromEntries(CHANNELS.map((c) => [c, make()])) as Record<Channel, T>;
}

export function newPeerCounters(): PeerCounters {
  return {
    sent: perChannel(() => ({ msgs: 0, bytes: 0 })),
    received: perChannel(() => ({ msgs: 0, bytes: 0 })),
    dropped: perChannel(() => ({})),
    faults: { ...perChannel(() => ({})), app: {} },
    requests: { sent: 0, timedOut: 0, failed: 0, lateResponses: 0, served: 0, refusedBusy: 0 },
    connects: 0,
    disconnects: 0,
    dialFailures: 0,
    duplicatesClosed: 0,
    streamOpenFailures: 0,
    bans: 0,
  };
}

export function bump(counts: Record<string, number>, key: string, by = 1): void {
  counts[key] = (counts[key] ?? 0) + by;
}

/** A deep copy, so a caller holding a snapshot does not see it change. */
export function cloneCounters(c: PeerCounters): PeerCounters {
  return structuredClone(c);
}
