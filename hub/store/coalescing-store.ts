/**
 * What the durable stores share: the backend's writes are remembered per row
 * (the last write of a row in one turn wins), and the store's own `schedule()`
 * sends them later as one batch, so a burst of sends costs one commit.
 */
import type { AgentRecord, MessageRecord } from "./store.ts";

/** The writes since the last batch: a record to put, or null to delete; `seq` when the sequence moved. */
export interface ChangeBatch {
  agents: Map<string, AgentRecord | null>;
  messages: Map<string, MessageRecord | null>;
  seq: number | undefined;
}

export abstract class CoalescingStore {
  lastSeq = 0;
  private agents = new Map<string, AgentRecord | null>();
  private messages = new Map<string, MessageRecord | null>();
  private seqDirty = false;

  putAgent(record: AgentRecord): void {
    this.agents.set(record.card.id, record);
    this.schedule();
  }
  deleteAgent(id: string): void {
    this.agents.set(id, null);
    this.schedule();
  }
  putMessage(record: MessageRecord): void {
    this.messages.set(record.message.msg_id, record);
    this.schedule();
  }
  deleteMessage(msgId: string): void {
    this.messages.set(msgId, null);
    this.schedule();
  }
  setLastSeq(seq: number): void {
    this.lastSeq = seq;
    this.seqDirty = true;
    this.schedule();
  }

  /** True when nothing was written since the last batch was taken. */
  protected get unchanged(): boolean {
    return this.agents.size === 0 && this.messages.size === 0 && !this.seqDirty;
  }

  /** Hand over everything written so far and start a new batch. */
  protected takeChanges(): ChangeBatch {
    const batch = {
      agents: this.agents,
      messages: this.messages,
      seq: this.seqDirty ? this.lastSeq : undefined,
    };
    this.agents = new Map();
    this.messages = new Map();
    this.seqDirty = false;
    return batch;
  }

  /** Arrange for the pending changes to be written (typically on the next turn of the event loop). */
  protected abstract schedule(): void;
}
