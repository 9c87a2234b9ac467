/** The throwaway store (`--store memory`): nothing survives the process. */
import { randomBytes } from "node:crypto";
import type { AgentRecord, HubStore, MessageRecord } from "./store.ts";

export class MemoryStore implements HubStore {
  readonly kind = "memory" as const;
  readonly epoch = randomBytes(4).toString("hex");
  lastSeq = 0;
  loadAgents(): AgentRecord[] {
    return [];
  }
  loadMessages(): MessageRecord[] {
    return [];
  }
  putAgent(): void {}
  deleteAgent(): void {}
  putMessage(_record: MessageRecord): void {}
  deleteMessage(): void {}
  setLastSeq(seq: number): void {
    this.lastSeq = seq;
  }
  flush(): Promise<void> {
    return Promise.resolve();
  }
  close(): void {}
}
