// The slice of @nxtedition/rocksdb (an abstract-level store, shipped without types) we use.
declare module '@nxtedition/rocksdb' {
  export class RocksLevel {
    constructor(location: string, options?: Record<string, unknown>);
    open(options?: Record<string, unknown>): Promise<void>;
    close(): Promise<void>;
    getMany(keys: Buffer[], options?: Record<string, unknown>): Promise<(Buffer | undefined)[]>;
    batch(ops: unknown[], options?: Record<string, unknown>): Promise<void>;
    iterator(options?: Record<string, unknown>): AsyncIterable<[Buffer, Buffer]> & { close(): Promise<void> };
  }
}
