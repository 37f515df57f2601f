// WebSocket side of the SDK: calls, and the subscriptions of rpc.md (new blocks, one
// transaction's receipt). Subscription listeners are registered when the answer carrying the
// id arrives, before any notification for it can be read.
import WebSocket from 'ws';
import { ErrorCode, RpcError, type RpcErrorObject } from './errors.ts';
import type { MethodName, MethodParams, MethodResult } from './methods.ts';
import type { HeaderWithHash, Receipt } from './types.ts';

interface Pending {
  resolve(v: unknown): void;
  reject(e: Error): void;
  /** runs synchronously with the answer, before any later message is handled */
  onResult?: (v: unknown) => void;
}

export interface WsClientOptions {
  /** called once when the connection ends: the reason the server gave (e.g. too slow), or the close code */
  onDisconnect?: (reason: string) => void;
  maxPayload?: number;
}

export class GoodnessWsClient {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly subs = new Map<string, (result: unknown) => void>();
  private serverNotice: string | null = null;
  private closedReason: string | null = null;

  private constructor(
    private readonly ws: WebSocket,
    private readonly options: WsClientOptions,
  ) {
    ws.on('message', (data) => this.onMessage(String(data)));
    ws.on('close', (code, reason) => this.onClose(this.serverNotice ?? `connection closed (${code}${reason.length ? ` ${reason.toString()}` : ''})`));
    ws.on('error', (err) => this.onClose(this.serverNotice ?? `connection error: ${err.message}`));
  }

  /** `url` is the node's http(s) URL or its ws(s) URL; /ws is added when missing. */
  static connect(url: string, options: WsClientOptions = {}): Promise<GoodnessWsClient> {
    const wsUrl = toWsUrl(url);
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(wsUrl, { maxPayload: options.maxPayload ?? 64 * 1024 * 1024, perMessageDeflate: false });
      ws.once('open', () => {
        ws.off('error', reject);
        resolve(new GoodnessWsClient(ws, options));
      });
      ws.once('error', reject);
    });
  }

  get closed(): boolean {
    return this.closedReason !== null;
  }

  call<M extends MethodName>(method: M, params: MethodParams<M>): Promise<MethodResult<M>> {
    return this.send(method, params) as Promise<MethodResult<M>>;
  }

  /** Subscribes (["newBlocks"] or ["transaction", hash]); returns the subscription id. */
  subscribe(params: ['newBlocks'] | ['transaction', string], listener: (result: unknown) => void): Promise<string> {
    return this.send('subscribe', params, (id) => this.subs.set(id as string, listener)) as Promise<string>;
  }

  async unsubscribe(id: string): Promise<boolean> {
    this.subs.delete(id);
    return (await this.send('unsubscribe', [id])) as boolean;
  }

  /** Calls `cb` with each committed block's header; resolves to an unsubscribe function. */
  async subscribeNewBlocks(cb: (header: HeaderWithHash) => void): Promise<() => Promise<boolean>> {
    const id = await this.subscribe(['newBlocks'], (h) => cb(h as HeaderWithHash));
    return () => this.unsubscribe(id);
  }

  /** The receipt of `hash` once committed (at once if it already is); RpcError -32005 after timeoutMs. */
  async waitForTransaction(hash: string, timeoutMs = 60_000): Promise<Receipt> {
    let settle!: (r: Receipt) => void;
    const receipt = new Promise<Receipt>((resolve) => (settle = resolve));
    const id = await this.subscribe(['transaction', hash], (r) => settle(r as Receipt));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new RpcError(ErrorCode.TIMEOUT, `transaction ${hash} not committed within ${timeoutMs} ms`, { hash })), timeoutMs);
    });
    try {
      return await Promise.race([receipt, timeout, this.whenClosed()]);
    } finally {
      clearTimeout(timer);
      this.subs.delete(id);
      if (!this.closed) this.unsubscribe(id).catch(() => {});
    }
  }

  close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      this.ws.once('close', () => resolve());
      this.ws.close(1000);
    });
  }

  private closeWaiters: ((e: Error) => void)[] = [];
  private whenClosed(): Promise<never> {
    return new Promise((_, reject) => {
      if (this.closedReason !== null) reject(new Error(this.closedReason));
      else this.closeWaiters.push(reject);
    });
  }

  private send(method: string, params: unknown, onResult?: (v: unknown) => void): Promise<unknown> {
    if (this.closedReason !== null) return Promise.reject(new Error(this.closedReason));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onResult });
      this.ws.send(JSON.stringify({ jsonrpc: '2.0', id, method, params }), (err) => {
        if (err && this.pending.delete(id)) reject(err);
      });
    });
  }

  private onMessage(text: string): void {
    let msg: { id?: number; result?: unknown; error?: RpcErrorObject; method?: string; params?: { subscription?: string; result?: unknown; message?: string } };
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    if (msg.method === 'subscription' && msg.params?.subscription !== undefined) {
      this.subs.get(msg.params.subscription)?.(msg.params.result);
      return;
    }
    if (msg.method === 'error') {
      // the server's last word before it disconnects us (e.g. too slow to read)
      this.serverNotice = msg.params?.message ?? 'server error notice';
      return;
    }
    if (typeof msg.id !== 'number') return;
    const p = this.pending.get(msg.id);
    if (!p) return;
    this.pending.delete(msg.id);
    if (msg.error) p.reject(RpcError.fromObject(msg.error));
    else {
      p.onResult?.(msg.result);
      p.resolve(msg.result);
    }
  }

  private onClose(reason: string): void {
    if (this.closedReason !== null) return;
    this.closedReason = reason;
    const err = new Error(reason);
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    this.subs.clear();
    for (const w of this.closeWaiters.splice(0)) w(err);
    this.options.onDisconnect?.(reason);
  }
}

export function toWsUrl(url: string): string {
  const u = new URL(url);
  if (u.protocol === 'http:') u.protocol = 'ws:';
  else if (u.protocol === 'https:') u.protocol = 'wss:';
  if (u.pathname === '/' || u.pathname === '') u.pathname = '/ws';
  return u.toString();
}
