// JSON-RPC error codes of spec/rpc.md and the one error type that carries them, on the server
// (thrown by method handlers) and in the client SDK (thrown for error answers).
import type { SubmitResult } from './node-api.ts';

export const ErrorCode = {
  PARSE_ERROR: -32700,
  INVALID_REQUEST: -32600,
  METHOD_NOT_FOUND: -32601,
  INVALID_PARAMS: -32602,
  INTERNAL_ERROR: -32603,
  /** transaction refused at admission; data {code, log} */
  TX_REFUSED: -32001,
  /** the pool is full: back off and retry */
  POOL_FULL: -32002,
  /** this hash, or this (from, nonce), is already pending or committed */
  DUPLICATE: -32003,
  NOT_FOUND: -32004,
  /** timed out waiting for commit (the transaction may still commit) */
  TIMEOUT: -32005,
  /** body over the node's limit, or a batch over the call limit */
  TOO_LARGE: -32006,
  /** the caller of `query` may not see that path */
  NOT_PERMITTED: -32007,
} as const;

export type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode];

/** The `error` member of a JSON-RPC 2.0 answer. */
export interface RpcErrorObject {
  code: number;
  message: string;
  data?: unknown;
}

export class RpcError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly data?: unknown,
  ) {
    super(message);
    this.name = 'RpcError';
  }

  toJSON(): RpcErrorObject {
    return this.data === undefined ? { code: this.code, message: this.message } : { code: this.code, message: this.message, data: this.data };
  }

  static fromObject(e: RpcErrorObject): RpcError {
    return new RpcError(e.code, e.message, e.data);
  }
}

export function invalidParams(message: string): RpcError {
  return new RpcError(ErrorCode.INVALID_PARAMS, message);
}

/** Maps a failed admission onto its rpc.md error. */
export function submitError(result: Exclude<SubmitResult, { ok: true }>): RpcError {
  switch (result.error) {
    case 'refused':
      return new RpcError(ErrorCode.TX_REFUSED, `transaction refused: ${result.log}`, { code: result.code, log: result.log });
    case 'pool-full':
      return new RpcError(ErrorCode.POOL_FULL, `pool is full, back off and retry: ${result.log}`);
    case 'duplicate':
      return new RpcError(ErrorCode.DUPLICATE, `duplicate transaction: ${result.log}`);
  }
}
