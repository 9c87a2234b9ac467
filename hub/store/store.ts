/**
 * Where the hub keeps agents and messages so a restart (even kill -9) loses
 * nothing it acknowledged. The backend holds the live state in memory and
 * writes every change through this small interface; writes are grouped and a
 * caller that must not answer before its change is durable awaits `flush()`.
 */
import type { AgentCard, Message, Outcome } from "../../contract/schemas.ts";
import type { SqliteSync } from "../../lib/env.ts";

export interface AgentRecord {
  card: AgentCard;
  /** sha256 (hex) of the agent credential; the credential itself is never stored. */
  token_hash: string;
  last_seen: number;
  /** The client counts on its open inbox stream for presence (it registered with presence "stream"). */
  stream_presence?: boolean;
}

export type MessageState = "queued" | "acked" | "final";

export interface MessageRecord {
  message: Message;
  state: MessageState;
  expires_at: number;
  /** Inbox event id of the message on the recipient's stream. */
  deliver_seq: number;
  /** Set once final: the outcome and its event id on the sender's stream. */
  outcome?: Outcome;
  outcome_seq?: number;
  /** The sender has taken the outcome (acked it); the record is only a tombstone now. */
  outcome_taken?: boolean;
  done_at?: number;
  /** Set once final: the size the send was counted at (a tombstone no longer holds the prompt). */
  bytes?: number;
}

export interface HubStore {
  readonly kind: "sqlite" | "memory" | "redis";
  /** Changes when the store is new: event ids from another epoch cannot be resumed from. */
  readonly epoch: string;
  /** SQLite: how its commits are synced, as the database reports it (not as it was asked). */
  readonly sync?: SqliteSync;
  /** The highest event sequence number ever handed out. */
  readonly lastSeq: number;
  loadAgents(): AgentRecord[];
  loadMessages(): MessageRecord[];
  putAgent(record: AgentRecord): void;
  deleteAgent(id: string): void;
  putMessage(record: MessageRecord): void;
  deleteMessage(msgId: string): void;
  setLastSeq(seq: number): void;
  /** Resolves once every change made so far is on disk (at once for the memory store). */
  flush(): Promise<void>;
  close(): void;
}

export type StoreKind = HubStore["kind"];

export async function openStore(
  kind: StoreKind,
  dir: string,
  opts: { sync?: SqliteSync } = {},
): Promise<HubStore> {
  if (kind === "redis")
    throw new Error("the Redis store is opened by the hub cluster (hub/cluster/), with its lease");
  if (kind === "memory") {
    const { MemoryStore } = await import("./memory.ts");
    return new MemoryStore();
  }
  const { openSqliteStore } = await import("./sqlite.ts");
  return openSqliteStore(dir, opts);
}
