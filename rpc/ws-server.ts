// The WebSocket endpoint /ws: the same methods as HTTP, plus subscriptions to new blocks and to
// one transaction's receipt. A client that does not read its messages is told so and dropped,
// never silently skipped: a subscriber can rely on seeing every block or being disconnected.
import type { IncomingMessage } from 'node:http';
import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { headerFields } from '../consensus/chain/header.ts';
import type { CommitWatch } from './commit-watch.ts';
import type { Dispatcher, ExtraMethod } from './dispatch.ts';
import { ErrorCode, RpcError, invalidParams } from './errors.ts';
import { hashParam, paramList } from './params.ts';
import type { HeaderWithHash } from './types.ts';

export interface WsEndpointOptions {
  dispatcher: Dispatcher;
  commits: CommitWatch;
  /** largest message a client may send */
  maxPayload: number;
  /** unsent bytes a client may have queued before it is told it is too slow and dropped */
  maxBufferedBytes: number;
  maxConnections: number;
  maxSubscriptions: number;
  /** calls one connection may have running at once */
  maxInFlight: number;
}

/** How long a dropped slow client gets to read the notice before the socket is cut. */
const SLOW_CLIENT_GRACE_MS = 5_000;

interface Subscription {
  cancel(): void;
  /** false until the answer carrying its id has been sent: notifications wait for it */
  live: boolean;
  held: string[];
}

class Connection {
  private readonly subs = new Map<string, Subscription>();
  private readonly abort = new AbortController();
  private inFlight = 0;
  private closing = false;

  constructor(
    private readonly ws: WebSocket,
    private readonly o: WsEndpointOptions,
  ) {
    ws.on('message', (data) => this.onMessage(data as Buffer | Buffer[]));
    ws.on('close', () => this.teardown());
    // ws reports protocol violations (oversized messages, bad frames) as errors and closes the
    // socket itself with the matching close code; the connection only needs tearing down.
    ws.on('error', () => this.teardown());
  }

  private onMessage(data: Buffer | Buffer[]): void {
    if (this.closing) return;
    const text = (Array.isArray(data) ? Buffer.concat(data) : data).toString('utf8');
    if (this.inFlight >= this.o.maxInFlight) {
      this.send(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: ErrorCode.POOL_FULL, message: `${this.inFlight} calls already running on this connection: wait for their answers` } }));
      return;
    }
    const created: Subscription[] = [];
    this.inFlight++;
    this.o.dispatcher
      .handle(text, this.abort.signal, this.extraMethods(created))
      .then(
        (answer) => {
          if (answer !== null) this.send(answer);
        },
        () => {
          // handle() answers every failure itself; nothing reaches here
        },
      )
      .finally(() => {
        this.inFlight--;
        for (const sub of created) {
          sub.live = true;
          for (const m of sub.held.splice(0)) this.send(m);
        }
      });
  }

  private extraMethods(created: Subscription[]): Map<string, ExtraMethod> {
    return new Map<string, ExtraMethod>([
      ['subscribe', (params) => this.subscribe(params, created)],
      ['unsubscribe', (params) => this.unsubscribe(params)],
    ]);
  }

  private subscribe(params: unknown, created: Subscription[]): string {
    const list = paramList(params, 1, 2, ['"newBlocks" | "transaction"', 'hash?']);
    if (this.subs.size >= this.o.maxSubscriptions) {
      throw new RpcError(ErrorCode.TOO_LARGE, `too many subscriptions on this connection (limit ${this.o.maxSubscriptions})`);
    }
    const id = '0x' + randomBytes(8).toString('hex');
    const sub: Subscription = { cancel: () => {}, live: false, held: [] };
    const notify = (result: unknown): void => {
      const text = JSON.stringify({ jsonrpc: '2.0', method: 'subscription', params: { subscription: id, result } });
      if (sub.live) this.send(text);
      else sub.held.push(text);
    };
    if (list[0] === 'newBlocks') {
      if (list.length !== 1) throw invalidParams('subscribe ["newBlocks"] takes no further params');
      sub.cancel = this.o.commits.onBlocks((block) => {
        const header: HeaderWithHash = { ...headerFields(block.header), hash: block.hash };
        notify(header);
      });
    } else if (list[0] === 'transaction') {
      if (list.length !== 2) throw invalidParams('subscribe ["transaction", hash] needs the transaction hash');
      const hash = hashParam(list[1], 'hash');
      sub.cancel = this.o.commits.onceCommitted(hash, (receipt) => {
        notify(receipt);
        this.subs.delete(id);
      });
    } else {
      throw invalidParams('subscribe takes ["newBlocks"] or ["transaction", hash]');
    }
    this.subs.set(id, sub);
    created.push(sub);
    return id;
  }

  /** true when the subscription existed and is now cancelled, false for an unknown id */
  private unsubscribe(params: unknown): boolean {
    const [id] = paramList(params, 1, 1, ['subscription id']);
    if (typeof id !== 'string') throw invalidParams('subscription id must be a string');
    const sub = this.subs.get(id);
    if (!sub) return false;
    sub.cancel();
    this.subs.delete(id);
    return true;
  }

  private send(text: string): void {
    if (this.closing || this.ws.readyState !== this.ws.OPEN) return;
    if (this.ws.bufferedAmount > this.o.maxBufferedBytes) {
      this.dropAsTooSlow();
      return;
    }
    this.ws.send(text);
  }

  private dropAsTooSlow(): void {
    const buffered = this.ws.bufferedAmount;
    this.closing = true;
    this.teardown();
    const notice = {
      jsonrpc: '2.0',
      method: 'error',
      params: {
        reason: 'slow-consumer',
        message: `client too slow: ${buffered} bytes unread, over the limit of ${this.o.maxBufferedBytes}; disconnecting`,
      },
    };
    this.ws.send(JSON.stringify(notice));
    this.ws.close(1008, 'client too slow');
    const cut = setTimeout(() => this.ws.terminate(), SLOW_CLIENT_GRACE_MS);
    cut.unref();
    this.ws.once('close', () => clearTimeout(cut));
  }

  private teardown(): void {
    this.abort.abort();
    for (const sub of this.subs.values()) sub.cancel();
    this.subs.clear();
  }
}

export class WsEndpoint {
  private readonly wss: WebSocketServer;

  constructor(private readonly o: WsEndpointOptions) {
    this.wss = new WebSocketServer({ noServer: true, maxPayload: o.maxPayload, perMessageDeflate: false });
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    if (this.wss.clients.size >= this.o.maxConnections) {
      socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      new Connection(ws, this.o);
    });
  }

  get connections(): number {
    return this.wss.clients.size;
  }

  close(): Promise<void> {
    for (const ws of this.wss.clients) ws.terminate();
    return new Promise((resolve) => this.wss.close(() => resolve()));
  }
}
