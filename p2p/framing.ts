// Frames on a stream: a 4-byte big-endian body length, then the body. The decoder checks the
// length against the limit as soon as the 4 header bytes are in, so an oversized frame is
// refused before its body is buffered: a stream's memory is bounded by one frame.
//
// Sync channel bodies start with a 5-byte header (kind, request id) so that requests and
// replies can share one stream per direction.

export const FRAME_HEADER_BYTES = 4;

export type FrameFault = 'oversized_frame' | 'malformed_frame';

export class FrameError extends Error {
  override readonly name = 'FrameError';
  constructor(
    readonly reason: FrameFault,
    message: string,
  ) {
    super(message);
  }
}

export function frameHeader(bodyBytes: number): Uint8Array {
  const header = new Uint8Array(FRAME_HEADER_BYTES);
  new DataView(header.buffer).setUint32(0, bodyBytes);
  return header;
}

/** Encodes a list of bodies as consecutive frames in one buffer. */
export function encodeFrames(bodies: readonly (readonly Uint8Array[])[]): Uint8Array {
  let total = 0;
  for (const parts of bodies) {
    total += FRAME_HEADER_BYTES;
    for (const p of parts) total += p.length;
  }
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  let at = 0;
  for (const parts of bodies) {
    let len = 0;
    for (const p of parts) len += p.length;
    view.setUint32(at, len);
    at += FRAME_HEADER_BYTES;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
  }
  return out;
}

/**
 * Incremental decoder. `push` returns the frames completed by a chunk (each a fresh copy, safe
 * to keep) or throws a FrameError; after a throw the decoder must be discarded with its stream.
 */
export class FrameDecoder {
  private chunks: Uint8Array[] = [];
  private buffered = 0;
  /** body length of the frame being assembled, once its header has been read */
  private expected = -1;

  constructor(readonly maxBodyBytes: number) {}

  /** Bytes held for a frame not yet complete (0 at a frame boundary). */
  get pendingBytes(): number {
    return this.buffered;
  }

  push(chunk: Uint8Array): Uint8Array[] {
    const frames: Uint8Array[] = [];
    if (chunk.length === 0) return frames;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    for (;;) {
      if (this.expected < 0) {
        if (this.buffered < FRAME_HEADER_BYTES) break;
        const header = this.take(FRAME_HEADER_BYTES);
        const length = new DataView(header.buffer, header.byteOffset, FRAME_HEADER_BYTES).getUint32(0);
        if (length > this.maxBodyBytes) {
          this.reset();
          throw new FrameError('oversized_frame', `frame of ${length} bytes is over the limit of ${this.maxBodyBytes}`);
        }
        this.expected = length;
      }
      if (this.buffered < this.expected) break;
      frames.push(this.take(this.expected));
      this.expected = -1;
    }
    return frames;
  }

  private reset(): void {
    this.chunks = [];
    this.buffered = 0;
    this.expected = -1;
  }

  /** Removes n buffered bytes from the front, as a new array. */
  private take(n: number): Uint8Array {
    const out = new Uint8Array(n);
    let at = 0;
    while (at < n) {
      const head = this.chunks[0]!;
      const want = n - at;
      if (head.length <= want) {
        out.set(head, at);
        at += head.length;
        this.chunks.shift();
      } else {
        out.set(head.subarray(0, want), at);
        this.chunks[0] = head.subarray(want);
        at += want;
      }
    }
    this.buffered -= n;
    return out;
  }
}

// ---- sync channel bodies ----

export const SYNC_HEADER_BYTES = 5;

export const SyncKind = {
  message: 0,
  request: 1,
  response: 2,
  error: 3,
} as const;
export type SyncKind = (typeof SyncKind)[keyof typeof SyncKind];

export interface SyncFrame {
  kind: SyncKind;
  /** request id; 0 for one-way messages */
  id: number;
  payload: Uint8Array;
}

export function syncHeader(kind: SyncKind, id: number): Uint8Array {
  const header = new Uint8Array(SYNC_HEADER_BYTES);
  header[0] = kind;
  new DataView(header.buffer).setUint32(1, id);
  return header;
}

/** Parses a sync body; throws a malformed_frame FrameError if it cannot be one. */
export function decodeSyncFrame(body: Uint8Array): SyncFrame {
  if (body.length < SYNC_HEADER_BYTES) throw new FrameError('malformed_frame', `sync frame of ${body.length} bytes is shorter than its ${SYNC_HEADER_BYTES}-byte header`);
  const kind = body[0]!;
  if (kind > SyncKind.error) throw new FrameError('malformed_frame', `sync frame kind ${kind} is unknown`);
  const id = new DataView(body.buffer, body.byteOffset, body.length).getUint32(1);
  return { kind: kind as SyncKind, id, payload: body.subarray(SYNC_HEADER_BYTES) };
}
