// A bounded per-peer, per-channel outbound queue. It never grows past its limits: taking a new
// message when full drops the oldest ones (the freshest vote or batch is the useful one), and
// every drop is reported to the caller so it can be counted.

export interface QueuedMessage {
  /** the frame body in pieces (e.g. sync header + payload), written back to back */
  parts: Uint8Array[];
  /** total length of parts */
  bytes: number;
  /** called if the message is dropped instead of sent (rejects a pending request) */
  onDrop?: (reason: string) => void;
}

export interface QueueLimits {
  maxMessages: number;
  maxBytes: number;
}

export class SendQueue {
  private items: QueuedMessage[] = [];
  private head = 0;
  private queuedBytes = 0;

  constructor(readonly limits: QueueLimits) {}

  get length(): number {
    return this.items.length - this.head;
  }

  get bytes(): number {
    return this.queuedBytes;
  }

  /**
   * Appends a message, first dropping the oldest ones until it fits. Returns the dropped
   * messages (empty when nothing was dropped). A message larger than maxBytes on its own is
   * still taken once the queue is empty, so that a large block reply can go out.
   */
  push(message: QueuedMessage): QueuedMessage[] {
    const dropped: QueuedMessage[] = [];
    while (this.length > 0 && (this.length + 1 > this.limits.maxMessages || this.queuedBytes + message.bytes > this.limits.maxBytes)) {
      dropped.push(this.shift()!);
    }
    this.items.push(message);
    this.queuedBytes += message.bytes;
    return dropped;
  }

  peek(i = 0): QueuedMessage | undefined {
    return this.items[this.head + i];
  }

  shift(): QueuedMessage | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head]!;
    this.items[this.head] = undefined as unknown as QueuedMessage;
    this.head++;
    this.queuedBytes -= item.bytes;
    // Compact now and then instead of shifting the array on every message.
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  /** Empties the queue and returns what was in it. */
  clear(): QueuedMessage[] {
    const all = this.items.slice(this.head);
    this.items = [];
    this.head = 0;
    this.queuedBytes = 0;
    return all;
  }
}
