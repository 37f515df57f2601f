// The libp2p transport of the validator network (TCP + Noise + Yamux): a full mesh of
// validators known by the peer ids in genesis, one-way framed streams per channel, bounded
// per-peer send queues with consensus first, reconnect with backoff, peer scoring.
//
// Wire format (documented here because both ends must agree):
//  - each channel is its own protocol, `${protocolPrefix}/${channel}/${version}` (protocolId);
//    a channel's version changes with its messages' encoding, so that nodes that would not
//    understand each other do not open the channel at all (consensus 2.0.0: unsigned PRECOMMIT);
//  - each node opens ONE long-lived outbound stream per peer and channel and only writes on it;
//    it reads only from the streams the peer opened. So between two validators there are two
//    streams per channel, one each way, and neither side ever reads and writes the same stream
//    (no request/reply interleaving on a stream, no half-close dance). Data written back on a
//    one-way stream is a fault (`unexpected_data`);
//  - a stream carries frames: 4-byte big-endian body length, then the body (framing.ts), with
//    bodies of at most maxFrameBytes;
//  - consensus and txs bodies are the caller's bytes; sync bodies start with a 5-byte header
//    (kind: message/request/response/error, request id), so that a reply travels on the
//    replier's own outbound sync stream.
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import type { ComponentLogger, Connection, ConnectionGater, MultiaddrConnection, PeerId, PrivateKey, Stream } from '@libp2p/interface';
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id';
import { tcp } from '@libp2p/tcp';
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr';
import { createLibp2p, type Libp2p } from 'libp2p';
import { pino, type Logger } from 'pino';
import { backoffDelay, type BackoffOptions } from './backoff.ts';
import { decodeSyncFrame, encodeFrames, FrameDecoder, FrameError, frameHeader, SYNC_HEADER_BYTES, syncHeader, SyncKind, type SyncFrame } from './framing.ts';
import { DEFAULT_SCORE_OPTIONS, PeerScore, type ScoreOptions } from './score.ts';
import { SendQueue, type QueueLimits, type QueuedMessage } from './send-queue.ts';
import { bump, cloneCounters, newPeerCounters, type DropReason, type P2PStats, type PeerCounters } from './stats.ts';
import { CHANNELS, P2PRequestError, type Channel, type MessageHandler, type PeerInfo, type RequestHandler, type Transport, type ValidatorPeer } from './types.ts';

export const DEFAULT_MAX_FRAME_BYTES = 4 * 1024 * 1024;

/** Knobs with defaults; tests shorten the timers. */
export interface P2PTuning {
  queues: Record<Channel, QueueLimits>;
  backoff: BackoffOptions;
  /** a connection that lasted this long resets the backoff when it drops */
  stableConnectionMs: number;
  dialTimeoutMs: number;
  streamOpenTimeoutMs: number;
  /** a frame begun must be complete within this long of the last complete one */
  frameReadTimeoutMs: number;
  /** a stream that does not drain within this long is reset (the peer stopped reading) */
  drainTimeoutMs: number;
  /** delay before reopening a stream that failed to open or died young */
  streamRetryMs: number;
  /** sync requests from one peer served at once; more get a "busy" error reply */
  maxServedRequestsPerPeer: number;
  /** our requests to one peer awaiting a reply; more are refused at once */
  maxPendingRequestsPerPeer: number;
  score: ScoreOptions;
}

export const DEFAULT_TUNING: P2PTuning = {
  queues: {
    consensus: { maxMessages: 10_000, maxBytes: 32 * 1024 * 1024 },
    txs: { maxMessages: 512, maxBytes: 16 * 1024 * 1024 },
    sync: { maxMessages: 256, maxBytes: 32 * 1024 * 1024 },
  },
  backoff: { baseMs: 250, maxMs: 30_000 },
  stableConnectionMs: 5_000,
  dialTimeoutMs: 5_000,
  streamOpenTimeoutMs: 5_000,
  frameReadTimeoutMs: 20_000,
  drainTimeoutMs: 30_000,
  streamRetryMs: 1_000,
  maxServedRequestsPerPeer: 8,
  maxPendingRequestsPerPeer: 256,
  score: DEFAULT_SCORE_OPTIONS,
};

export interface P2PNodeOptions {
  /** this node's libp2p key (node-key.json's peerPrivateKey via privateKeyFromProtobuf) */
  privateKey: PrivateKey;
  /** multiaddrs to bind, e.g. /ip4/0.0.0.0/tcp/26650 */
  listen: string[];
  /** multiaddrs to advertise, if not the listen ones */
  announce?: string[];
  /** the validator set; an entry with this node's own peer id is recognised and skipped */
  validators: ValidatorPeer[];
  /** largest frame body accepted or sent */
  maxFrameBytes?: number;
  logger?: Logger;
  /** libp2p's own debug logger, e.g. prefixLogger('node1') from @libp2p/logger in tests */
  libp2pLogger?: ComponentLogger;
  /** protocol ids are `${protocolPrefix}/${channel}/${version}` (protocolId); put the chain id in it to keep chains apart */
  protocolPrefix?: string;
  /** random source in [0, 1) for backoff jitter (injected so runs can be reproduced) */
  random?: () => number;
  tuning?: Partial<P2PTuning>;
}

/**
 * Largest number of bytes coalesced into one stream write. Small frames are copied into one
 * buffer (one Noise/Yamux round per write, not per message: STACK.md measured ~26k msg/s with
 * one 200 B message per write; coalesced, two processes here move ~200k msg/s); a frame larger than this is written without copying its body. It also bounds
 * what a consensus message can find ahead of it from another channel: one write.
 */
const COALESCE_BYTES = 256 * 1024;
/** one stream per channel and direction, plus one while a replacement opens */
const MAX_INBOUND_STREAMS_PER_PROTOCOL = 2;
const REFUSED_PEERS_KEPT = 64;

interface PendingRequest {
  resolve: (bytes: Uint8Array) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

interface Outbound {
  channel: Channel;
  queue: SendQueue;
  stream?: Stream;
  opening?: Promise<Stream | undefined>;
  pumping: boolean;
  /** resolved when this channel's pump goes idle (lower channels wait on consensus) */
  idleWaiters: (() => void)[];
  retryTimer?: NodeJS.Timeout;
  queueFullDrops: number;
}

interface PeerState {
  index: number;
  peerId: string;
  id: PeerId;
  /** configured address with /p2p/<peerId>, or undefined if we only accept its dials */
  dialAddr?: Multiaddr;
  out: Record<Channel, Outbound>;
  score: PeerScore;
  counters: PeerCounters;
  connected: boolean;
  connectedAt: number;
  dialing: boolean;
  dialAttempt: number;
  dialTimer?: NodeJS.Timeout;
  unbanTimer?: NodeJS.Timeout;
  pending: Map<number, PendingRequest>;
  served: number;
}

export async function createP2PNode(opts: P2PNodeOptions): Promise<P2PNode> {
  const node = new P2PNode(opts);
  await node.init();
  return node;
}

/** Each channel's wire version: 2.0.0 for consensus since PRECOMMITs lost their signature. */
const CHANNEL_VERSIONS: Record<Channel, string> = { consensus: '2.0.0', txs: '1.0.0', sync: '1.0.0' };

/** The libp2p protocol id of a channel. */
export function protocolId(prefix: string, channel: Channel): string {
  return `${prefix}/${channel}/${CHANNEL_VERSIONS[channel]}`;
}

export class P2PNode implements Transport {
  readonly peerId: string;
  readonly maxFrameBytes: number;
  private readonly self: PeerId;
  private readonly log: Logger;
  private readonly tuning: P2PTuning;
  private readonly random: () => number;
  private readonly protocols: Record<Channel, string>;
  private libp2p!: Libp2p;
  private running = false;
  private selfIndex: number | null = null;
  private readonly byPeerId = new Map<string, PeerState>();
  private readonly byIndex = new Map<number, PeerState>();
  private readonly handlers: Record<Channel, Set<MessageHandler>> = { consensus: new Set(), txs: new Set(), sync: new Set() };
  private requestHandler?: RequestHandler;
  private nextRequestId = 0;
  private readonly refused = { connections: {} as Record<string, number>, streams: {} as Record<string, number> };
  private readonly refusedPeers = new Map<string, number>();
  private readonly handshaken = new WeakSet<MultiaddrConnection>();
  private inboundHandshakeFailures = 0;

  constructor(private readonly opts: P2PNodeOptions) {
    this.self = peerIdFromPrivateKey(opts.privateKey);
    this.peerId = this.self.toString();
    this.maxFrameBytes = opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    this.log = opts.logger ?? pino({ name: 'p2p', level: 'silent' });
    this.tuning = { ...DEFAULT_TUNING, ...opts.tuning, queues: { ...DEFAULT_TUNING.queues, ...opts.tuning?.queues } };
    this.random = opts.random ?? Math.random;
    const prefix = opts.protocolPrefix ?? '/goodness';
    this.protocols = Object.fromEntries(CHANNELS.map((c) => [c, protocolId(prefix, c)])) as Record<Channel, string>;
    this.applyValidators(opts.validators);
  }

  /** Builds libp2p and registers the protocol handlers; start() opens the listener and dials. */
  async init(): Promise<void> {
    this.libp2p = await createLibp2p({
      privateKey: this.opts.privateKey,
      addresses: { listen: this.opts.listen, announce: this.opts.announce ?? [] },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      connectionGater: this.gater(),
      connectionManager: {
        maxConnections: 1024,
        dialTimeout: this.tuning.dialTimeoutMs,
        // A local cluster dials from one host (127.0.0.1); the default of 5 connections per
        // second per host would refuse validators reconnecting after a restart.
        inboundConnectionThreshold: 1000,
        maxIncomingPendingConnections: 64,
        // We redial validators ourselves (with our backoff); peers are never tagged KEEP_ALIVE.
        reconnectRetries: 0,
      },
      logger: this.opts.libp2pLogger,
      start: false,
    });
    for (const channel of CHANNELS) {
      await this.libp2p.handle(this.protocols[channel], (stream, connection) => this.onInboundStream(channel, stream, connection), {
        maxInboundStreams: MAX_INBOUND_STREAMS_PER_PROTOCOL,
        maxOutboundStreams: MAX_INBOUND_STREAMS_PER_PROTOCOL,
      });
    }
    this.libp2p.addEventListener('connection:open', (evt) => this.onConnectionOpen(evt.detail));
    this.libp2p.addEventListener('connection:close', (evt) => this.onConnectionClose(evt.detail));
  }

  async start(): Promise<void> {
    if (this.running) return;
    await this.libp2p.start();
    this.running = true;
    for (const peer of this.byPeerId.values()) this.scheduleDial(peer, 0);
    this.log.info({ peerId: this.peerId, addresses: this.listenAddresses(), validators: this.byPeerId.size }, 'p2p started');
  }

  async stop(): Promise<void> {
    if (!this.running) {
      await this.libp2p.stop();
      return;
    }
    this.running = false;
    for (const peer of this.byPeerId.values()) this.retire(peer, 'stopped');
    await this.libp2p.stop();
    this.log.info('p2p stopped');
  }

  /** The addresses this node advertises (the announce ones if given, else those bound), with /p2p/<peerId>, once started. */
  listenAddresses(): string[] {
    return this.libp2p.getMultiaddrs().map((a) => a.toString());
  }

  // ---- Transport ----

  send(toIndex: number, channel: Channel, bytes: Uint8Array): boolean {
    const peer = this.byIndex.get(toIndex);
    if (!peer) {
      this.log.debug({ toIndex, channel }, 'send to an index that is not another validator');
      return false;
    }
    const parts = channel === 'sync' ? [syncHeader(SyncKind.message, 0), bytes] : [bytes];
    return this.enqueue(peer, channel, parts);
  }

  broadcast(channel: Channel, bytes: Uint8Array): number {
    let queued = 0;
    for (const peer of this.byIndex.values()) if (this.send(peer.index, channel, bytes)) queued++;
    return queued;
  }

  onMessage(channel: Channel, handler: MessageHandler): () => void {
    this.handlers[channel].add(handler);
    return () => this.handlers[channel].delete(handler);
  }

  onRequest(handler: RequestHandler): () => void {
    this.requestHandler = handler;
    return () => {
      if (this.requestHandler === handler) this.requestHandler = undefined;
    };
  }

  request(toIndex: number, bytes: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    const peer = this.byIndex.get(toIndex);
    if (!this.running) return Promise.reject(new P2PRequestError('the p2p node is not running', 'stopped'));
    if (!peer) return Promise.reject(new P2PRequestError(`${toIndex} is not the index of another validator`, 'unknown-peer'));
    if (bytes.length + SYNC_HEADER_BYTES > this.maxFrameBytes) {
      return Promise.reject(new P2PRequestError(`request of ${bytes.length} bytes is over the frame limit of ${this.maxFrameBytes}`, 'too-large'));
    }
    if (peer.pending.size >= this.tuning.maxPendingRequestsPerPeer) {
      return Promise.reject(new P2PRequestError(`${peer.pending.size} requests to validator ${toIndex} are already waiting for replies`, 'dropped'));
    }
    this.nextRequestId = (this.nextRequestId % 0xffff_fffe) + 1;
    const id = this.nextRequestId;
    return new Promise<Uint8Array>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (peer.pending.delete(id)) {
          peer.counters.requests.timedOut++;
          reject(new P2PRequestError(`request to validator ${toIndex} timed out after ${timeoutMs} ms`, 'timeout'));
        }
      }, timeoutMs);
      peer.pending.set(id, { resolve, reject, timer });
      peer.counters.requests.sent++;
      const queued = this.enqueue(peer, 'sync', [syncHeader(SyncKind.request, id), bytes], (reason) => {
        this.failPending(peer, id, new P2PRequestError(`request to validator ${toIndex} dropped (${reason})`, 'dropped'));
      });
      if (!queued) this.failPending(peer, id, new P2PRequestError(`request to validator ${toIndex} could not be queued`, 'dropped'));
    });
  }

  penalize(index: number, reason: string, weight?: number): void {
    const peer = this.byIndex.get(index);
    if (!peer) return;
    bump(peer.counters.faults.app, reason);
    this.lowerScore(peer, weight ?? peer.score.penaltyFor(reason), reason);
  }

  peers(): PeerInfo[] {
    return [...this.byIndex.values()]
      .sort((a, b) => a.index - b.index)
      .map((peer) => {
        const conns = this.openConnections(peer);
        const addresses = new Set<string>();
        if (peer.dialAddr) addresses.add(peer.dialAddr.toString());
        for (const c of conns) addresses.add(c.remoteAddr.toString());
        return { peerId: peer.peerId, addresses: [...addresses], validatorIndex: peer.index, connected: conns.length > 0 };
      });
  }

  // ---- beyond Transport ----

  /**
   * Replaces the validator set (e.g. after governance adds one). Peers that left are
   * disconnected and their queued messages dropped; new ones are dialled.
   */
  setValidators(list: ValidatorPeer[]): void {
    this.applyValidators(list);
  }

  /** Messages waiting in a peer's queue for a channel (lets a sender pace itself). */
  queueDepth(index: number, channel: Channel): number {
    return this.byIndex.get(index)?.out[channel].queue.length ?? 0;
  }

  isConnected(index: number): boolean {
    const peer = this.byIndex.get(index);
    return peer !== undefined && this.openConnections(peer).length > 0;
  }

  /** Whether any other validator is connected (cheap enough for every admitted transaction, unlike peers()). */
  anyConnected(): boolean {
    for (const peer of this.byIndex.values()) if (this.openConnections(peer).length > 0) return true;
    return false;
  }

  stats(): P2PStats {
    const now = Date.now();
    return {
      peerId: this.peerId,
      selfIndex: this.selfIndex,
      peers: [...this.byIndex.values()]
        .sort((a, b) => a.index - b.index)
        .map((peer) => {
          const connections = this.openConnections(peer).length;
          return {
            index: peer.index,
            peerId: peer.peerId,
            connected: connections > 0,
            connections,
            score: Math.round(peer.score.current(now) * 100) / 100,
            bannedUntil: peer.score.isBanned(now) ? peer.score.bannedUntil : null,
            queued: Object.fromEntries(CHANNELS.map((c) => [c, { msgs: peer.out[c].queue.length, bytes: peer.out[c].queue.bytes }])) as P2PStats['peers'][number]['queued'],
            ...cloneCounters(peer.counters),
          };
        }),
      refused: structuredClone(this.refused),
      refusedPeers: Object.fromEntries(this.refusedPeers),
      inboundHandshakeFailures: this.inboundHandshakeFailures,
    };
  }

  // ---- validator set ----

  private applyValidators(list: ValidatorPeer[]): void {
    const next = new Map<string, ValidatorPeer>();
    const indexes = new Set<number>();
    let selfIndex: number | null = null;
    for (const v of list) {
      peerIdFromString(v.peerId); // throws on a malformed id: a configuration error
      if (next.has(v.peerId) || indexes.has(v.index)) throw new Error(`validator set names peer ${v.peerId} or index ${v.index} twice`);
      indexes.add(v.index);
      if (v.peerId === this.peerId) selfIndex = v.index;
      else next.set(v.peerId, v);
    }
    this.selfIndex = selfIndex;
    for (const [peerId, peer] of this.byPeerId) {
      if (!next.has(peerId)) {
        this.byPeerId.delete(peerId);
        this.retire(peer, 'peer_removed');
        for (const conn of this.openConnections(peer)) conn.abort(new Error('no longer a validator'));
        this.log.info({ peer: peer.index, peerId }, 'validator removed');
      }
    }
    this.byIndex.clear();
    for (const v of next.values()) {
      let peer = this.byPeerId.get(v.peerId);
      if (!peer) {
        peer = this.newPeer(v);
        this.byPeerId.set(v.peerId, peer);
        if (this.running) this.scheduleDial(peer, 0);
      } else {
        peer.index = v.index;
        const addr = this.dialAddrOf(v);
        if (addr?.toString() !== peer.dialAddr?.toString()) {
          peer.dialAddr = addr;
          if (this.running && !peer.connected) {
            clearTimeout(peer.dialTimer);
            peer.dialTimer = undefined;
            peer.dialAttempt = 0;
            this.scheduleDial(peer, 0);
          }
        }
      }
      this.byIndex.set(v.index, peer);
    }
  }

  private newPeer(v: ValidatorPeer): PeerState {
    const outbound = (channel: Channel): Outbound => ({ channel, queue: new SendQueue(this.tuning.queues[channel]), pumping: false, idleWaiters: [], queueFullDrops: 0 });
    const out: Record<Channel, Outbound> = { consensus: outbound('consensus'), txs: outbound('txs'), sync: outbound('sync') };
    return {
      index: v.index,
      peerId: v.peerId,
      id: peerIdFromString(v.peerId),
      dialAddr: this.dialAddrOf(v),
      out,
      score: new PeerScore(this.tuning.score, Date.now()),
      counters: newPeerCounters(),
      connected: false,
      connectedAt: 0,
      dialing: false,
      dialAttempt: 0,
      pending: new Map(),
      served: 0,
    };
  }

  private dialAddrOf(v: ValidatorPeer): Multiaddr | undefined {
    if (!v.multiaddr) return undefined;
    try {
      const addr = multiaddr(v.multiaddr);
      return v.multiaddr.includes('/p2p/') ? addr : addr.encapsulate(`/p2p/${v.peerId}`);
    } catch (err) {
      this.log.error({ peer: v.index, multiaddr: v.multiaddr, err }, 'validator multiaddr does not parse; not dialling it');
      return undefined;
    }
  }

  /** Stops everything about a peer: timers, queued messages, pending requests. */
  private retire(peer: PeerState, reason: DropReason): void {
    clearTimeout(peer.dialTimer);
    clearTimeout(peer.unbanTimer);
    peer.dialTimer = peer.unbanTimer = undefined;
    this.dropQueued(peer, reason);
    for (const id of [...peer.pending.keys()]) {
      this.failPending(peer, id, new P2PRequestError(`request to validator ${peer.index} abandoned (${reason})`, reason === 'stopped' ? 'stopped' : 'dropped'));
    }
  }

  private dropQueued(peer: PeerState, reason: DropReason): void {
    for (const out of Object.values(peer.out)) {
      clearTimeout(out.retryTimer);
      out.retryTimer = undefined;
      const dropped = out.queue.clear();
      if (dropped.length > 0) bump(peer.counters.dropped[out.channel], reason, dropped.length);
      for (const m of dropped) m.onDrop?.(reason);
    }
  }

  // ---- connections ----

  private gater(): ConnectionGater {
    return {
      denyDialPeer: (peerId) => this.refusal(peerId.toString()) !== null,
      denyInboundConnection: (maConn) => {
        maConn.addEventListener('close', () => {
          if (!this.handshaken.has(maConn)) this.inboundHandshakeFailures++;
        });
        return false;
      },
      denyInboundEncryptedConnection: (peerId, maConn) => {
        this.handshaken.add(maConn);
        return this.refuseConnection(peerId.toString());
      },
      denyOutboundEncryptedConnection: (peerId) => this.refuseConnection(peerId.toString()),
    };
  }

  /** Why a peer may not connect now, or null if it may. */
  private refusal(peerId: string): 'not_validator' | 'banned' | null {
    const peer = this.byPeerId.get(peerId);
    if (!peer) return 'not_validator';
    if (peer.score.isBanned(Date.now())) return 'banned';
    return null;
  }

  private refuseConnection(peerId: string): boolean {
    const reason = this.refusal(peerId);
    if (reason === null) return false;
    this.countRefused('connections', reason, peerId);
    return true;
  }

  private countRefused(kind: 'connections' | 'streams', reason: string, peerId: string): void {
    bump(this.refused[kind], reason);
    const n = (this.refusedPeers.get(peerId) ?? 0) + 1;
    this.refusedPeers.delete(peerId);
    this.refusedPeers.set(peerId, n);
    if (this.refusedPeers.size > REFUSED_PEERS_KEPT) this.refusedPeers.delete(this.refusedPeers.keys().next().value!);
    this.log.debug({ peerId, kind, reason }, 'refused');
  }

  private openConnections(peer: PeerState): Connection[] {
    if (!this.libp2p) return [];
    return this.libp2p.getConnections(peer.id).filter((c) => c.status === 'open');
  }

  /**
   * When both sides dial at once there are two connections. Both ends keep the same one: the
   * one dialled by the peer with the smaller id (the oldest such, if several), else the oldest.
   */
  private preferredConnection(peer: PeerState, conns: Connection[]): Connection | undefined {
    const mine = this.peerId < peer.peerId ? 'outbound' : 'inbound';
    return [...conns].sort((a, b) => {
      const pa = a.direction === mine ? 0 : 1;
      const pb = b.direction === mine ? 0 : 1;
      return pa - pb || a.timeline.open - b.timeline.open;
    })[0];
  }

  private onConnectionOpen(conn: Connection): void {
    const peerId = conn.remotePeer.toString();
    const peer = this.byPeerId.get(peerId);
    const reason = this.refusal(peerId);
    if (!peer || reason !== null) {
      // The gater already refuses these; this catches a set change racing an upgrade.
      this.countRefused('connections', reason ?? 'not_validator', peerId);
      conn.abort(new Error(`refused: ${reason}`));
      return;
    }
    const conns = this.openConnections(peer);
    if (conns.length > 1) {
      const keep = this.preferredConnection(peer, conns);
      for (const c of conns) {
        if (c === keep) continue;
        peer.counters.duplicatesClosed++;
        c.close().catch((err: Error) => c.abort(err));
      }
    }
    if (!peer.connected) {
      peer.connected = true;
      peer.connectedAt = Date.now();
      peer.counters.connects++;
      clearTimeout(peer.dialTimer);
      peer.dialTimer = undefined;
      this.log.info({ peer: peer.index, direction: conn.direction, addr: conn.remoteAddr.toString() }, 'validator connected');
    }
    for (const channel of CHANNELS) this.kick(peer, channel);
  }

  private onConnectionClose(conn: Connection): void {
    const peer = this.byPeerId.get(conn.remotePeer.toString());
    if (!peer || !peer.connected || this.openConnections(peer).length > 0) return;
    peer.connected = false;
    peer.counters.disconnects++;
    const lasted = Date.now() - peer.connectedAt;
    peer.dialAttempt = lasted >= this.tuning.stableConnectionMs ? 0 : peer.dialAttempt + 1;
    this.log.info({ peer: peer.index, lastedMs: lasted }, 'validator disconnected');
    this.scheduleDial(peer, backoffDelay(peer.dialAttempt, this.tuning.backoff, this.random));
  }

  private scheduleDial(peer: PeerState, delayMs: number): void {
    if (!this.running || !peer.dialAddr || peer.dialTimer || peer.score.isBanned(Date.now())) return;
    peer.dialTimer = setTimeout(() => {
      peer.dialTimer = undefined;
      void this.dial(peer);
    }, delayMs);
  }

  private async dial(peer: PeerState): Promise<void> {
    if (!this.running || this.byPeerId.get(peer.peerId) !== peer || peer.dialing || !peer.dialAddr) return;
    if (peer.score.isBanned(Date.now()) || this.openConnections(peer).length > 0) return;
    peer.dialing = true;
    try {
      await this.libp2p.dial(peer.dialAddr, { signal: AbortSignal.timeout(this.tuning.dialTimeoutMs) });
    } catch (err) {
      if (!this.running) return;
      peer.counters.dialFailures++;
      const delay = backoffDelay(peer.dialAttempt, this.tuning.backoff, this.random);
      peer.dialAttempt++;
      this.log.debug({ peer: peer.index, err: (err as Error).message, retryInMs: delay }, 'dial failed');
      peer.dialing = false;
      if (this.openConnections(peer).length === 0) this.scheduleDial(peer, delay);
    } finally {
      peer.dialing = false;
    }
  }

  // ---- scoring ----

  private fault(peer: PeerState, channel: Channel, reason: string): void {
    bump(peer.counters.faults[channel], reason);
    this.log.warn({ peer: peer.index, channel, reason }, 'peer fault');
    this.lowerScore(peer, peer.score.penaltyFor(reason), reason);
  }

  private lowerScore(peer: PeerState, amount: number, reason: string): void {
    if (!peer.score.lower(amount, Date.now())) return;
    peer.counters.bans++;
    const coolDownMs = this.tuning.score.coolDownMs;
    this.log.warn({ peer: peer.index, reason, coolDownMs }, 'peer score below threshold: disconnecting for a cool-down');
    this.retire(peer, 'peer_banned');
    for (const conn of this.openConnections(peer)) conn.abort(new Error('peer banned for a cool-down'));
    peer.unbanTimer = setTimeout(() => {
      peer.unbanTimer = undefined;
      peer.score.unban(Date.now());
      peer.dialAttempt = 0;
      this.log.info({ peer: peer.index }, 'cool-down over: peer allowed back');
      this.scheduleDial(peer, 0);
    }, coolDownMs);
  }

  // ---- sending ----

  private enqueue(peer: PeerState, channel: Channel, parts: Uint8Array[], onDrop?: (reason: string) => void): boolean {
    let bytes = 0;
    for (const p of parts) bytes += p.length;
    const drop = (reason: DropReason): false => {
      bump(peer.counters.dropped[channel], reason);
      onDrop?.(reason);
      return false;
    };
    if (!this.running) return drop('stopped');
    if (bytes > this.maxFrameBytes) {
      this.log.warn({ peer: peer.index, channel, bytes, max: this.maxFrameBytes }, 'message over the frame limit dropped');
      return drop('too_large');
    }
    if (peer.score.isBanned(Date.now())) return drop('peer_banned');
    const out = peer.out[channel];
    const dropped = out.queue.push({ parts, bytes, onDrop });
    if (dropped.length > 0) {
      bump(peer.counters.dropped[channel], 'queue_full', dropped.length);
      for (const m of dropped) m.onDrop?.('queue_full');
      // Consensus tolerates lost messages, but dropping one means the peer cannot keep up (or
      // is away): say so, without flooding the log.
      const before = out.queueFullDrops;
      out.queueFullDrops += dropped.length;
      if (before === 0 || Math.floor(before / 1000) !== Math.floor(out.queueFullDrops / 1000)) {
        const log = channel === 'consensus' ? this.log.warn.bind(this.log) : this.log.debug.bind(this.log);
        log({ peer: peer.index, channel, droppedSoFar: out.queueFullDrops, connected: peer.connected }, 'send queue full: oldest messages dropped');
      }
    }
    this.kick(peer, channel);
    return true;
  }

  private kick(peer: PeerState, channel: Channel): void {
    const out = peer.out[channel];
    if (out.pumping || out.queue.length === 0 || !this.running) return;
    this.pump(peer, out).catch((err: Error) => this.log.error({ peer: peer.index, channel, err }, 'send loop failed'));
  }

  /**
   * Moves queued messages onto the peer's stream for this channel, coalescing small frames into
   * one write, waiting for 'drain' when the stream is full and yielding to the event loop after
   * each write. Channels other than consensus wait while consensus has something to send.
   */
  private async pump(peer: PeerState, out: Outbound): Promise<void> {
    out.pumping = true;
    try {
      let failures = 0;
      while (this.running && out.queue.length > 0 && this.byPeerId.get(peer.peerId) === peer) {
        if (out.channel !== 'consensus' && peer.out.consensus.pumping) {
          const consensus = peer.out.consensus;
          await new Promise<void>((resolve) => consensus.idleWaiters.push(resolve));
          continue;
        }
        if (out.stream && (out.stream.status !== 'open' || out.stream.writeStatus !== 'writable')) out.stream = undefined;
        const stream = out.stream ?? (await this.openStream(peer, out));
        if (!stream) {
          this.retryLater(peer, out);
          break;
        }
        if (stream.writableNeedsDrain) {
          await this.waitForDrain(peer, out, stream);
          continue;
        }
        if (out.queue.length === 0) continue; // emptied (ban, removal) while the stream opened
        const batch: QueuedMessage[] = [];
        let batchBytes = 0;
        while (batch.length < out.queue.length) {
          const next = out.queue.peek(batch.length)!;
          if (batch.length > 0 && batchBytes + next.bytes + 4 > COALESCE_BYTES) break;
          batch.push(next);
          batchBytes += next.bytes + 4;
        }
        let ok: boolean;
        try {
          if (batchBytes > COALESCE_BYTES) {
            // one large message: write header and parts without copying the body
            ok = stream.send(frameHeader(batch[0]!.bytes));
            for (const part of batch[0]!.parts) if (part.length > 0) ok = stream.send(part);
          } else {
            ok = stream.send(encodeFrames(batch.map((m) => m.parts)));
          }
        } catch (err) {
          // The stream closed under us: the batch stays queued for the next stream.
          if (out.stream === stream) out.stream = undefined;
          if (++failures >= 3) {
            this.log.debug({ peer: peer.index, channel: out.channel, err: (err as Error).message }, 'stream writes keep failing; retrying later');
            this.retryLater(peer, out);
            break;
          }
          continue;
        }
        failures = 0;
        const sent = peer.counters.sent[out.channel];
        for (const m of batch) {
          out.queue.shift();
          sent.msgs++;
          sent.bytes += m.bytes;
        }
        if (!ok) await this.waitForDrain(peer, out, stream);
        else await yieldToEventLoop();
      }
    } finally {
      out.pumping = false;
      for (const resolve of out.idleWaiters.splice(0)) resolve();
    }
  }

  private retryLater(peer: PeerState, out: Outbound): void {
    if (out.retryTimer || !this.running || this.openConnections(peer).length === 0) return; // a new connection kicks us
    out.retryTimer = setTimeout(() => {
      out.retryTimer = undefined;
      this.kick(peer, out.channel);
    }, this.tuning.streamRetryMs);
  }

  /** Waits for 'drain' (not onDrain(), which resolves at once after the first drain in @libp2p/utils 7.4.1). */
  private waitForDrain(peer: PeerState, out: Outbound, stream: Stream): Promise<void> {
    if (stream.status !== 'open') return Promise.resolve(); // its 'close' may already have fired
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        stream.removeEventListener('drain', done);
        stream.removeEventListener('close', done);
        resolve();
      };
      const timer = setTimeout(() => {
        bump(peer.counters.faults[out.channel], 'drain_timeout');
        this.log.warn({ peer: peer.index, channel: out.channel, ms: this.tuning.drainTimeoutMs }, 'peer stopped reading: stream reset');
        if (out.stream === stream) out.stream = undefined;
        stream.abort(new Error('drain timeout'));
        done();
      }, this.tuning.drainTimeoutMs);
      stream.addEventListener('drain', done);
      stream.addEventListener('close', done);
    });
  }

  private openStream(peer: PeerState, out: Outbound): Promise<Stream | undefined> {
    if (out.opening) return out.opening;
    const conns = this.openConnections(peer);
    const conn = this.preferredConnection(peer, conns);
    if (!conn) return Promise.resolve(undefined);
    out.opening = (async () => {
      try {
        const stream = await conn.newStream(this.protocols[out.channel], { signal: AbortSignal.timeout(this.tuning.streamOpenTimeoutMs) });
        if (!this.running || this.byPeerId.get(peer.peerId) !== peer) {
          stream.abort(new Error('p2p node stopped or peer removed'));
          return undefined;
        }
        const openedAt = Date.now();
        stream.addEventListener('message', () => {
          // Our outbound streams are one-way: a peer writing back does not follow the protocol.
          if (stream.status !== 'open') return;
          this.fault(peer, out.channel, 'unexpected_data');
          stream.abort(new Error('data received on a one-way stream'));
        });
        stream.addEventListener('close', () => {
          if (out.stream !== stream) return;
          out.stream = undefined;
          // Reopen at once after a normal close; a stream that died young waits, so that a peer
          // resetting every stream cannot make us spin.
          if (Date.now() - openedAt < this.tuning.streamRetryMs) this.retryLater(peer, out);
          else this.kick(peer, out.channel);
        });
        out.stream = stream;
        return stream;
      } catch (err) {
        peer.counters.streamOpenFailures++;
        this.log.debug({ peer: peer.index, channel: out.channel, err: (err as Error).message }, 'stream open failed');
        return undefined;
      } finally {
        out.opening = undefined;
      }
    })();
    return out.opening;
  }

  // ---- receiving ----

  private onInboundStream(channel: Channel, stream: Stream, connection: Connection): void {
    const peerId = connection.remotePeer.toString();
    const peer = this.byPeerId.get(peerId);
    const reason = this.refusal(peerId);
    if (!peer || reason !== null) {
      this.countRefused('streams', reason ?? 'not_validator', peerId);
      stream.abort(new Error(`refused: ${reason}`));
      connection.abort(new Error(`refused: ${reason}`));
      return;
    }
    const decoder = new FrameDecoder(this.maxFrameBytes);
    let partialTimer: NodeJS.Timeout | undefined;
    const fail = (reason: string, err: Error): void => {
      clearTimeout(partialTimer);
      partialTimer = undefined;
      if (stream.status !== 'open') return;
      stream.abort(err);
      this.fault(peer, channel, reason);
    };
    stream.addEventListener('message', (evt) => {
      if (stream.status !== 'open') return;
      if (this.byPeerId.get(peerId) !== peer) {
        this.countRefused('streams', 'not_validator', peerId);
        stream.abort(new Error('no longer a validator'));
        return;
      }
      const data = evt.data instanceof Uint8Array ? evt.data : evt.data.subarray();
      try {
        const frames = decoder.push(data);
        for (const body of frames) this.deliver(peer, channel, body);
        if (decoder.pendingBytes === 0) {
          clearTimeout(partialTimer);
          partialTimer = undefined;
        } else if (partialTimer === undefined || frames.length > 0) {
          clearTimeout(partialTimer);
          partialTimer = setTimeout(() => fail('read_timeout', new Error('frame not completed in time')), this.tuning.frameReadTimeoutMs);
        }
      } catch (err) {
        if (err instanceof FrameError) {
          fail(err.reason, err);
        } else {
          // A bug of ours, not the peer's: never let it escape an event listener (it would
          // crash the process); drop the stream, the peer reopens it.
          this.log.error({ peer: peer.index, channel, err }, 'inbound frame handling failed');
          stream.abort(err as Error);
        }
      }
    });
    stream.addEventListener('close', () => clearTimeout(partialTimer));
    // We never write on an inbound stream; close our end too when the peer closes its end, so
    // the stream is released instead of lingering half-open and counting against the limit.
    stream.addEventListener('remoteCloseWrite', () => {
      stream.close().catch(() => stream.abort(new Error('close failed')));
    });
  }

  /** Hands one frame body to the layer above. Throws FrameError for a malformed sync frame. */
  private deliver(peer: PeerState, channel: Channel, body: Uint8Array): void {
    const received = peer.counters.received[channel];
    received.msgs++;
    received.bytes += body.length;
    if (channel !== 'sync') {
      this.dispatch(channel, peer.index, body);
      return;
    }
    const frame = decodeSyncFrame(body);
    switch (frame.kind) {
      case SyncKind.message:
        this.dispatch('sync', peer.index, frame.payload);
        return;
      case SyncKind.request:
        this.serve(peer, frame);
        return;
      case SyncKind.response:
      case SyncKind.error:
        this.settle(peer, frame);
        return;
    }
  }

  private dispatch(channel: Channel, fromIndex: number, bytes: Uint8Array): void {
    for (const handler of this.handlers[channel]) {
      try {
        handler(fromIndex, bytes);
      } catch (err) {
        this.log.error({ channel, fromIndex, err }, 'message handler threw');
      }
    }
  }

  private serve(peer: PeerState, frame: SyncFrame): void {
    const reply = (kind: SyncKind, payload: Uint8Array): void => {
      if (this.byPeerId.get(peer.peerId) === peer) this.enqueue(peer, 'sync', [syncHeader(kind, frame.id), payload]);
    };
    const replyError = (message: string): void => reply(SyncKind.error, new TextEncoder().encode(message.slice(0, 512)));
    const handler = this.requestHandler;
    if (!handler) {
      peer.counters.requests.served++;
      replyError('no request handler');
      return;
    }
    if (peer.served >= this.tuning.maxServedRequestsPerPeer) {
      peer.counters.requests.refusedBusy++;
      replyError('busy: too many requests in flight');
      return;
    }
    peer.served++;
    Promise.resolve()
      .then(() => handler(peer.index, frame.payload))
      .then(
        (response) => {
          if (!(response instanceof Uint8Array)) throw new Error('request handler returned no bytes');
          if (response.length + SYNC_HEADER_BYTES > this.maxFrameBytes) throw new Error(`response of ${response.length} bytes is over the frame limit`);
          reply(SyncKind.response, response);
        },
        (err: unknown) => replyError(err instanceof Error ? err.message : String(err)),
      )
      .catch((err: Error) => replyError(err.message))
      .finally(() => {
        peer.served--;
        peer.counters.requests.served++;
      });
  }

  private settle(peer: PeerState, frame: SyncFrame): void {
    const pending = peer.pending.get(frame.id);
    if (!pending) {
      // Most likely the reply to a request that already timed out; not the peer's fault.
      peer.counters.requests.lateResponses++;
      return;
    }
    peer.pending.delete(frame.id);
    clearTimeout(pending.timer);
    if (frame.kind === SyncKind.response) {
      pending.resolve(frame.payload);
    } else {
      peer.counters.requests.failed++;
      const message = new TextDecoder().decode(frame.payload).slice(0, 512);
      pending.reject(new P2PRequestError(`validator ${peer.index} answered with an error: ${message}`, 'remote-error'));
    }
  }

  private failPending(peer: PeerState, id: number, err: P2PRequestError): void {
    const pending = peer.pending.get(id);
    if (!pending) return;
    peer.pending.delete(id);
    clearTimeout(pending.timer);
    pending.reject(err);
  }
}

function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
