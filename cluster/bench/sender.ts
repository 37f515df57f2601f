// The hot path of the driver: pre-encoded JSON-RPC batches POSTed over keep-alive connections,
// one agent per node. Each transaction's call is encoded once, before the clock starts, as UTF-8
// bytes with the transaction's own index as its JSON-RPC id, so that a batch is a copy of those
// bytes into one buffer and each answer names its transaction. (A batch built as one string of
// joined calls was flattened, measured and encoded again for every request: most of the
// driver's main thread under load, though not, within the noise, of its CPU per transaction.)
import http from 'node:http';
import https from 'node:https';

/** One answer of a batch: the JSON-RPC id is the transaction index. */
export interface CallAnswer {
  id: number;
  result?: unknown;
  error?: { code: number; message: string; data?: unknown };
}

/** The JSON-RPC call that submits one transaction, encoded once (UTF-8). */
export function encodeSendCall(index: number, rawTx: string): Buffer {
  return Buffer.from(`{"jsonrpc":"2.0","id":${index},"method":"sendTransaction","params":["${rawTx}"]}`, 'utf8');
}

const OPEN = 0x5b; // [
const COMMA = 0x2c;
const CLOSE = 0x5d; // ]

/** `[call,call,...]` as one buffer. */
export function batchBody(calls: readonly Uint8Array[]): Buffer {
  // brackets, and a comma between each two calls
  let size = 2 + Math.max(0, calls.length - 1);
  for (const c of calls) size += c.length;
  const body = Buffer.allocUnsafe(size);
  body[0] = OPEN;
  let at = 1;
  for (let i = 0; i < calls.length; i++) {
    if (i > 0) body[at++] = COMMA;
    body.set(calls[i]!, at);
    at += calls[i]!.length;
  }
  body[at] = CLOSE;
  return body;
}

export class BatchPoster {
  readonly url: URL;
  private readonly agent: http.Agent;
  private readonly transport: typeof http | typeof https;

  constructor(
    url: string,
    maxSockets: number,
    private readonly timeoutMs = 30_000,
  ) {
    this.url = new URL(url);
    this.transport = this.url.protocol === 'https:' ? https : http;
    this.agent = new this.transport.Agent({ keepAlive: true, maxSockets });
  }

  /**
   * POSTs `[call,call,...]`. Resolves to the answers, or to one error object when the server
   * refused the batch as a whole (e.g. -32006 too large); rejects on a transport failure,
   * when nobody can tell whether the transactions were admitted.
   */
  post(calls: readonly Uint8Array[]): Promise<CallAnswer[] | { error: { code: number; message: string } }> {
    const body = batchBody(calls);
    return new Promise((resolve, reject) => {
      const req = this.transport.request(
        this.url,
        { method: 'POST', agent: this.agent, headers: { 'content-type': 'application/json', 'content-length': body.length } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            try {
              resolve(JSON.parse(text));
            } catch {
              reject(new Error(`HTTP ${res.statusCode} from ${this.url.host}: ${text.slice(0, 200)}`));
            }
          });
        },
      );
      req.setTimeout(this.timeoutMs, () => req.destroy(new Error(`no answer from ${this.url.host} within ${this.timeoutMs} ms`)));
      req.on('error', reject);
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
