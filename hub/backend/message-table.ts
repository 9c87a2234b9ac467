/**
 * The messages a hub holds, by id. A message whose outcome its sender has
 * taken is only a tombstone, kept for a while so that a repeated send or a
 * late `get` still finds it. A busy hub holds tens of thousands of those,
 * and every full collection walks each object the hub holds: a tombstone is
 * kept packed, as the one string of its store row (JSON, a third of the
 * record's size as objects), which has nothing inside to walk. It is read
 * back (a copy) when asked for, and never changed again.
 */
import { decodeMessageRow, encodeMessageRow } from "../store/message-row.ts";
import type { MessageRecord, MessageState } from "../store/store.ts";

export class MessageTable {
  private readonly live = new Map<string, MessageRecord>();
  private readonly packed = new Map<string, string>();

  get size(): number {
    return this.live.size + this.packed.size;
  }

  get(msgId: string): MessageRecord | undefined {
    const record = this.live.get(msgId);
    if (record) return record;
    const text = this.packed.get(msgId);
    return text === undefined ? undefined : decodeMessageRow(msgId, text);
  }

  /** The record, unless the message is a tombstone (then undefined, without unpacking it). */
  unpacked(msgId: string): MessageRecord | undefined {
    return this.live.get(msgId);
  }

  /** The message's state, told without unpacking a tombstone (which is final). */
  stateOf(msgId: string): MessageState | undefined {
    return this.packed.has(msgId) ? "final" : this.live.get(msgId)?.state;
  }

  isPacked(msgId: string): boolean {
    return this.packed.has(msgId);
  }

  has(msgId: string): boolean {
    return this.live.has(msgId) || this.packed.has(msgId);
  }

  set(msgId: string, record: MessageRecord): void {
    this.packed.delete(msgId);
    this.live.set(msgId, record);
  }

  delete(msgId: string): boolean {
    return this.live.delete(msgId) || this.packed.delete(msgId);
  }

  /** `msgId` is a tombstone from now on (see above). */
  pack(msgId: string): void {
    const record = this.live.get(msgId);
    if (!record) return;
    let text: string;
    try {
      text = encodeMessageRow(record);
    } catch {
      // Not JSON (a value put straight into the backend that throws when read): it stays an object.
      return;
    }
    this.live.delete(msgId);
    this.packed.set(msgId, text);
  }

  keys(): string[] {
    return [...this.live.keys(), ...this.packed.keys()];
  }

  /** Every record (tombstones as copies), in the order their messages were sent. */
  values(): MessageRecord[] {
    const all = [...this.live.values()];
    for (const [msgId, text] of this.packed) all.push(decodeMessageRow(msgId, text));
    return all.sort((a, b) => a.deliver_seq - b.deliver_seq);
  }
}
