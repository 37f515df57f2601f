// JSON-RPC 2.0 processing, independent of the transport: parse, validate the request objects,
// run single calls and batches over the method table, and serialise the answers. HTTP and
// WebSocket both hand it text and send back what it returns.
import type { CommitWatch } from './commit-watch.ts';
import { ErrorCode, RpcError, type RpcErrorObject } from './errors.ts';
import { isMethodName, methods, type CallContext, type MethodDef } from './methods.ts';
import type { RpcMetrics } from './metrics.ts';
import type { NodeApi } from './node-api.ts';

type Id = string | number | null;

/** A method served on one transport only (subscribe / unsubscribe on WebSocket). */
export type ExtraMethod = (params: unknown) => unknown;

export interface DispatcherOptions {
  api: NodeApi;
  commits: CommitWatch;
  maxBatch: number;
  metrics?: RpcMetrics;
  /** told about handler failures that were not RpcErrors (bugs): they answer -32603 */
  onInternalError?: (err: unknown, method: string) => void;
  now?: () => number;
}

const WS_ONLY = new Set(['subscribe', 'unsubscribe']);

function errorAnswer(id: Id, code: number, message: string, data?: unknown): string {
  const error: RpcErrorObject = data === undefined ? { code, message } : { code, message, data };
  return JSON.stringify({ jsonrpc: '2.0', id, error });
}

function isValidId(v: unknown): v is Id {
  return v === null || typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v));
}

export class Dispatcher {
  private readonly now: () => number;
  constructor(private readonly o: DispatcherOptions) {
    this.now = o.now ?? Date.now;
  }

  /**
   * Answers one HTTP body or WebSocket message: the answer text, or null when nothing is to
   * be sent back (only notifications).
   */
  async handle(text: string, signal: AbortSignal, extra?: Map<string, ExtraMethod>): Promise<string | null> {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (e) {
      this.o.metrics?.observe('invalid', String(ErrorCode.PARSE_ERROR), 0);
      return errorAnswer(null, ErrorCode.PARSE_ERROR, `parse error: ${(e as Error).message}`);
    }
    if (!Array.isArray(parsed)) return this.handleOne(parsed, signal, extra);
    if (parsed.length === 0) {
      this.o.metrics?.observe('invalid', String(ErrorCode.INVALID_REQUEST), 0);
      return errorAnswer(null, ErrorCode.INVALID_REQUEST, 'invalid request: empty batch');
    }
    if (parsed.length > this.o.maxBatch) {
      this.o.metrics?.observe('invalid', String(ErrorCode.TOO_LARGE), 0);
      return errorAnswer(null, ErrorCode.TOO_LARGE, `request too large: a batch of ${parsed.length} calls is over the limit of ${this.o.maxBatch}`);
    }
    const answers = await Promise.all(parsed.map((req) => this.handleOne(req, signal, extra)));
    const sent = answers.filter((a): a is string => a !== null);
    return sent.length ? `[${sent.join(',')}]` : null;
  }

  private async handleOne(req: unknown, signal: AbortSignal, extra?: Map<string, ExtraMethod>): Promise<string | null> {
    if (req === null || typeof req !== 'object' || Array.isArray(req)) {
      return this.invalid(null, 'a request is an object {jsonrpc, method, params?, id?}');
    }
    const r = req as Record<string, unknown>;
    const isNotification = !('id' in r);
    const id: Id = isValidId(r.id) ? r.id : null;
    if (!isNotification && !isValidId(r.id)) return this.invalid(null, 'id must be a string, a number or null');
    if (r.jsonrpc !== '2.0') return this.invalid(id, 'jsonrpc must be "2.0"');
    if (typeof r.method !== 'string') return this.invalid(id, 'method must be a string');
    if (r.params !== undefined && (r.params === null || typeof r.params !== 'object')) return this.invalid(id, 'params must be an array');

    const method = r.method;
    const started = performance.now();
    let label = 'unknown';
    let answer: string;
    let outcome: string;
    try {
      let result: unknown;
      const ws = extra?.get(method);
      if (ws) {
        label = method;
        result = await ws(r.params);
      } else if (isMethodName(method)) {
        label = method;
        const def = methods[method] as unknown as MethodDef<readonly unknown[], unknown>;
        const ctx: CallContext = { api: this.o.api, commits: this.o.commits, signal, now: this.now };
        result = await def.handler(ctx, def.params(r.params));
      } else if (WS_ONLY.has(method)) {
        throw new RpcError(ErrorCode.METHOD_NOT_FOUND, `method ${method} is served on the WebSocket endpoint /ws only`);
      } else {
        throw new RpcError(ErrorCode.METHOD_NOT_FOUND, `method not found: ${JSON.stringify(method.slice(0, 100))}`);
      }
      // JSON.stringify here, per call, so that one unserialisable result fails only its own call.
      answer = JSON.stringify({ jsonrpc: '2.0', id, result: result === undefined ? null : result });
      outcome = 'ok';
    } catch (e) {
      if (e instanceof RpcError) {
        answer = errorAnswer(id, e.code, e.message, e.data);
        outcome = String(e.code);
      } else {
        this.o.onInternalError?.(e, method);
        answer = errorAnswer(id, ErrorCode.INTERNAL_ERROR, `internal error: ${e instanceof Error ? e.message : String(e)}`);
        outcome = String(ErrorCode.INTERNAL_ERROR);
      }
    }
    this.o.metrics?.observe(label, outcome, (performance.now() - started) / 1000);
    return isNotification ? null : answer;
  }

  private invalid(id: Id, message: string): string {
    this.o.metrics?.observe('invalid', String(ErrorCode.INVALID_REQUEST), 0);
    return errorAnswer(id, ErrorCode.INVALID_REQUEST, `invalid request: ${message}`);
  }
}
