// The node's admin socket: NODE_FOLDER/admin.sock, a Unix socket that only the node's user can
// connect to (mode 0600: file permissions are the access control). It is never on the network
// and never on JSON-RPC. Only one process can open a RocksDB, so what must read a running node's
// data dir (a backup) asks the node here. One request per connection: a JSON line in, a JSON
// line out.
import { chmodSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Socket } from 'node:net';
import { isAbsolute } from 'node:path';
import type { Logger } from 'pino';
import type { KvStore } from '../state/store/kv-store.ts';
import { writeSnapshot, type BackupManifest } from './backup.ts';
import { UserError } from './config.ts';

export const ADMIN_SOCKET = 'admin.sock';
const MAX_REQUEST_BYTES = 64 * 1024;

export type AdminRequest = { op: 'ping' } | { op: 'backup'; out: string };

export type AdminAnswer =
  | { ok: true; node: string; pid: number }
  | { ok: true; manifest: BackupManifest }
  | { ok: false; error: string; operatorError: boolean };

export interface AdminContext {
  /** where the socket goes (NODE_FOLDER/admin.sock) */
  path: string;
  kv: KvStore;
  node: string;
  machine: string;
  log: Logger;
}

export interface AdminServer {
  readonly path: string;
  /** Aborts a backup in progress (its partial output is removed), closes and removes the socket. */
  close(): Promise<void>;
}

/**
 * Listens on `ctx.path`. A file already there is a leftover of a node that was killed: the
 * caller holds the data dir's RocksDB lock by now, so no other live node serves this folder,
 * and the file is replaced. When the socket cannot be made (a path longer than a Unix socket
 * allows, a read-only folder) the node runs without it and says so: a validator must not stay
 * down for want of a backup channel. Returns null then.
 */
export async function startAdminServer(ctx: AdminContext): Promise<AdminServer | null> {
  const sockets = new Set<Socket>();
  const backups = new Set<{ abort: AbortController; done: Promise<unknown> }>();

  const backup = async (out: string, abort: AbortController): Promise<AdminAnswer> => {
    if (backups.size > 0) return { ok: false, error: 'a backup of this node is already running: wait for it to finish.', operatorError: true };
    const started = Date.now();
    ctx.log.info({ out }, 'backup started');
    const done = writeSnapshot(ctx.kv, out, { node: ctx.node, machine: ctx.machine, signal: abort.signal });
    const entry = { abort, done: done.catch(() => undefined) };
    backups.add(entry);
    try {
      const manifest = await done;
      ctx.log.info({ out, height: manifest.height, blockHash: manifest.blockHash, entries: manifest.entries, bytes: manifest.bytes, ms: Date.now() - started }, 'backup written');
      return { ok: true, manifest };
    } catch (err) {
      if (err instanceof UserError) {
        ctx.log.warn({ out, reason: err.message }, 'backup refused or aborted');
        return { ok: false, error: err.message, operatorError: true };
      }
      ctx.log.error({ err, out }, 'backup failed');
      return { ok: false, error: `the node could not write the backup: ${(err as Error).message}. See the node's log.`, operatorError: false };
    } finally {
      backups.delete(entry);
    }
  };

  const answer = async (line: string, abort: AbortController): Promise<AdminAnswer> => {
    let req: Partial<AdminRequest> & { out?: unknown };
    try {
      req = JSON.parse(line) as typeof req;
    } catch {
      return { ok: false, error: 'the request is not a JSON line', operatorError: true };
    }
    if (req.op === 'ping') return { ok: true, node: ctx.node, pid: process.pid };
    if (req.op === 'backup') {
      if (typeof req.out !== 'string' || !isAbsolute(req.out)) return { ok: false, error: 'backup needs an absolute `out` folder', operatorError: true };
      return backup(req.out, abort);
    }
    return { ok: false, error: `unknown request ${JSON.stringify(req.op)}`, operatorError: true };
  };

  const server = createServer((socket) => {
    sockets.add(socket);
    // A client that goes away (Ctrl-C) does not leave the node writing a backup for nobody.
    const abort = new AbortController();
    socket.on('close', () => {
      sockets.delete(socket);
      abort.abort(new UserError('the client disconnected'));
    });
    socket.on('error', () => socket.destroy());
    let buffered = '';
    const onData = (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      const newline = buffered.indexOf('\n');
      if (newline < 0) {
        if (buffered.length > MAX_REQUEST_BYTES) socket.destroy();
        return;
      }
      socket.off('data', onData);
      void answer(buffered.slice(0, newline), abort).then((a) => {
        if (!socket.destroyed) socket.end(JSON.stringify(a) + '\n');
      });
    };
    socket.on('data', onData);
  });

  try {
    rmSync(ctx.path, { force: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(ctx.path, () => {
        server.off('error', reject);
        resolve();
      });
    });
    chmodSync(ctx.path, 0o600);
  } catch (err) {
    server.close();
    ctx.log.error({ err, path: ctx.path }, 'no admin socket: `goodness backup` cannot reach this node while it runs (stop it to back it up)');
    return null;
  }
  server.on('error', (err) => ctx.log.error({ err }, 'admin socket failed'));
  ctx.log.info({ path: ctx.path }, 'admin socket open');

  return {
    path: ctx.path,
    async close() {
      for (const b of backups) b.abort.abort(new UserError('the node is stopping'));
      await Promise.all([...backups].map((b) => b.done));
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await closed;
      // Node removes the socket file on close; this covers a close that did not.
      rmSync(ctx.path, { force: true });
    },
  };
}

/** The admin socket cannot be reached: nothing listens there (no node, or a killed node's leftover). */
export class AdminUnreachable extends Error {
  override readonly name = 'AdminUnreachable';
}

/**
 * Sends one request to the node listening on `path` and returns its answer. Throws
 * AdminUnreachable when no node listens there.
 */
export function adminRequest(path: string, req: AdminRequest, opts: { timeoutMs?: number } = {}): Promise<AdminAnswer> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    let received = '';
    let connected = false;
    const timer = opts.timeoutMs ? setTimeout(() => socket.destroy(new Error(`no answer from ${path} within ${opts.timeoutMs} ms`)), opts.timeoutMs) : null;
    socket.on('connect', () => {
      connected = true;
      socket.write(JSON.stringify(req) + '\n');
    });
    socket.on('data', (chunk) => (received += chunk.toString('utf8')));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (timer) clearTimeout(timer);
      if (!connected && (err.code === 'ENOENT' || err.code === 'ECONNREFUSED')) reject(new AdminUnreachable(`nothing listens on ${path}`));
      else reject(err);
    });
    socket.on('close', () => {
      if (timer) clearTimeout(timer);
      const line = received.split('\n')[0]!;
      try {
        resolve(JSON.parse(line) as AdminAnswer);
      } catch {
        reject(new Error(`the node closed ${path} without an answer (did it stop?)`));
      }
    });
  });
}
