// The node's JSON-RPC server (spec/rpc.md): HTTP POST / for calls and batches, GET /health,
// GET /metrics, and WebSocket /ws. Every request gets a JSON-RPC answer or an HTTP status;
// nothing a client sends can take the process down.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { CommitWatch } from './commit-watch.ts';
import { Dispatcher } from './dispatch.ts';
import { ErrorCode } from './errors.ts';
import { createRpcMetrics } from './metrics.ts';
import type { NodeApi } from './node-api.ts';
import { WsEndpoint } from './ws-server.ts';

export interface RpcServerOptions {
  api: NodeApi;
  host: string;
  /** 0 picks a free port */
  port: number;
  /** largest HTTP body and WebSocket message accepted (default 1 MiB) */
  maxBodyBytes?: number;
  /** most calls in one batch (default 1000) */
  maxBatch?: number;
  /** records request counts and durations by method and outcome */
  registry?: Registry;
  /** unsent bytes a WebSocket client may have queued before it is dropped (default 8 MiB) */
  wsMaxBufferedBytes?: number;
  wsMaxConnections?: number;
  /** told about handler failures that are bugs (they answer -32603) */
  onInternalError?: (err: unknown, method: string) => void;
  /** the clock `query` auth timestamps are checked against (default Date.now) */
  now?: () => number;
}

export interface RpcServer {
  port: number;
  url: string;
  close(): Promise<void>;
}

const MiB = 1024 * 1024;
const JSON_TYPE = 'application/json';
/** After refusing an oversized body, how long the rest may trickle in (discarded) before the socket is cut. */
const LINGER_MS = 1_000;

type Body = { ok: true; text: string } | { ok: false; tooLarge: true };

/** Reads a body up to `limit` bytes; past it, stops keeping bytes and says so at once. */
function readBody(req: IncomingMessage, limit: number): Promise<Body> {
  return new Promise((resolve) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      resolve({ ok: false, tooLarge: true });
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        req.off('data', onData);
        req.off('end', onEnd);
        chunks.length = 0;
        resolve({ ok: false, tooLarge: true });
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => resolve({ ok: true, text: Buffer.concat(chunks).toString('utf8') });
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', () => resolve({ ok: false, tooLarge: true }));
  });
}

function sendJson(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': JSON_TYPE, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/**
 * Answers an oversized body and closes the connection without keeping the rest. The write side
 * closes first and the socket lingers briefly, discarding input, so that the client reads the
 * answer before the connection is reset (Apache's "lingering close").
 */
function refuseTooLarge(req: IncomingMessage, res: ServerResponse, limit: number): void {
  const body = JSON.stringify({
    jsonrpc: '2.0',
    id: null,
    error: { code: ErrorCode.TOO_LARGE, message: `request too large: the body is over the limit of ${limit} bytes` },
  });
  const socket = req.socket;
  // Node's server calls destroySoon() after a "Connection: close" answer, which resets the
  // connection while the client may still be sending; linger instead, then cut.
  socket.destroySoon = function lingeringClose(this: typeof socket) {
    this.end();
    const cut = setTimeout(() => this.destroy(), LINGER_MS);
    cut.unref();
    this.once('close', () => clearTimeout(cut));
  };
  req.resume();
  res.writeHead(413, { 'content-type': JSON_TYPE, 'content-length': Buffer.byteLength(body), connection: 'close' });
  res.end(body);
}

export async function startRpcServer(options: RpcServerOptions): Promise<RpcServer> {
  const { api, host, port } = options;
  const maxBodyBytes = options.maxBodyBytes ?? MiB;
  const maxBatch = options.maxBatch ?? 1000;
  const commits = new CommitWatch(api);
  const dispatcher = new Dispatcher({
    api,
    commits,
    maxBatch,
    metrics: options.registry ? createRpcMetrics(options.registry) : undefined,
    onInternalError: options.onInternalError,
    now: options.now,
  });
  const ws = new WsEndpoint({
    dispatcher,
    commits,
    maxPayload: maxBodyBytes,
    maxBufferedBytes: options.wsMaxBufferedBytes ?? 8 * MiB,
    maxConnections: options.wsMaxConnections ?? 1000,
    maxSubscriptions: 1000,
    maxInFlight: 1000,
  });

  async function onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'POST' && path === '/') {
      const body = await readBody(req, maxBodyBytes);
      if (!body.ok) {
        refuseTooLarge(req, res, maxBodyBytes);
        return;
      }
      // A closed connection aborts waits (sendTransactionAndWait) that nobody will read.
      const gone = new AbortController();
      res.on('close', () => gone.abort());
      const answer = await dispatcher.handle(body.text, gone.signal);
      if (res.destroyed) return;
      if (answer === null) {
        res.writeHead(204);
        res.end();
      } else sendJson(res, 200, answer);
      return;
    }
    if (req.method === 'GET' && path === '/health') {
      const healthy = api.healthy();
      const body = JSON.stringify({ healthy, chain: api.chain, nodeId: api.nodeId, height: api.store.latestHeight() });
      sendJson(res, healthy ? 200 : 503, body);
      return;
    }
    if (req.method === 'GET' && path === '/metrics') {
      const text = await api.metrics();
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
      res.end(text);
      return;
    }
    req.resume();
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found: POST / for JSON-RPC, GET /health, GET /metrics, WebSocket /ws\n');
  }

  const server = createServer({ keepAliveTimeout: 30_000 }, (req, res) => {
    req.on('error', () => {});
    onRequest(req, res).catch((err) => {
      options.onInternalError?.(err, `${req.method} ${req.url}`);
      if (!res.headersSent) sendJson(res, 500, JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: ErrorCode.INTERNAL_ERROR, message: 'internal error' } }));
      else res.destroy();
    });
  });
  server.headersTimeout = 35_000;
  server.on('upgrade', (req, socket, head) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/ws') {
      socket.on('error', () => {});
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    ws.handleUpgrade(req, socket, head);
  });
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    else socket.destroy();
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = (server.address() as AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host;

  return {
    port: bound,
    url: `http://${urlHost}:${bound}`,
    async close() {
      commits.close();
      await ws.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
