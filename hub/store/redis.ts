/**
 * The shared store (`--store redis://…`): a project's agents, messages and
 * event sequence in Redis hashes, so any hub of the project can load them
 * when it takes the lease (hub/cluster/). Like the SQLite store, changes made
 * during one turn of the event loop are coalesced per key and sent together;
 * here as one Lua script, which Redis runs atomically and which first checks
 * that the caller still holds the lease: a hub that lost its lease (paused,
 * cut off) can never overwrite what the new holder wrote. flush() resolves
 * only once Redis has answered, so nothing is acknowledged before it is
 * stored. The first failed write poisons the store: every later flush fails
 * too, and the cluster drops this backend and reloads from Redis, so memory
 * never drifts from what Redis holds.
 */
import { randomBytes } from "node:crypto";
import { comsError } from "../../contract/errors.ts";
import { CoalescingStore } from "./coalescing-store.ts";
import type { RedisKeys } from "./redis-keys.ts";
import type { AgentRecord, HubStore, MessageRecord } from "./store.ts";

/** The commands the store needs; the node-redis client satisfies it. */
export interface RedisCommands {
  hGetAll(key: string): Promise<Record<string, string>>;
  hSetNX(key: string, field: string, value: string): Promise<number | boolean>;
  eval(script: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
}

// KEYS: lease, meta, agents, messages. ARGV: lease token, last_seq ("" = unchanged), then op/id/data triples.
const FLUSH_SCRIPT = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('FENCED this hub no longer holds the project lease')
end
if ARGV[2] ~= '' then redis.call('HSET', KEYS[2], 'last_seq', ARGV[2]) end
for i = 3, #ARGV, 3 do
  local op = ARGV[i]
  if op == 'A' then redis.call('HSET', KEYS[3], ARGV[i + 1], ARGV[i + 2])
  elseif op == 'a' then redis.call('HDEL', KEYS[3], ARGV[i + 1])
  elseif op == 'M' then redis.call('HSET', KEYS[4], ARGV[i + 1], ARGV[i + 2])
  else redis.call('HDEL', KEYS[4], ARGV[i + 1]) end
end
return 1`;

export interface RedisStoreOptions {
  redis: RedisCommands;
  keys: RedisKeys;
  /** The lease token this hub holds: every write is checked against it. */
  leaseToken: string;
  /** Called once, on the first failed write (the cluster steps down). */
  onFailure?: (error: Error) => void;
}

/** Load the project's state; the backend is built from the result. */
export async function openRedisStore(opts: RedisStoreOptions): Promise<RedisStore> {
  await opts.redis.hSetNX(opts.keys.meta, "epoch", randomBytes(4).toString("hex"));
  const [meta, agents, messages] = await Promise.all([
    opts.redis.hGetAll(opts.keys.meta),
    opts.redis.hGetAll(opts.keys.agents),
    opts.redis.hGetAll(opts.keys.messages),
  ]);
  return new RedisStore(
    opts,
    meta,
    Object.values(agents).map((text) => JSON.parse(text) as AgentRecord),
    Object.values(messages).map((text) => JSON.parse(text) as MessageRecord),
  );
}

export class RedisStore extends CoalescingStore implements HubStore {
  readonly kind = "redis" as const;
  readonly epoch: string;
  private readonly opts: RedisStoreOptions;
  private agentsLoaded: AgentRecord[];
  private messagesLoaded: MessageRecord[];
  private pending: Promise<void> | null = null;
  /** The last batch sent: Redis answers in order, so once it is done every earlier one is too. */
  private sent: Promise<void> = Promise.resolve();
  private failure: Error | undefined;
  private closed = false;

  constructor(
    opts: RedisStoreOptions,
    meta: Record<string, string>,
    agents: AgentRecord[],
    messages: MessageRecord[],
  ) {
    super();
    this.opts = opts;
    this.epoch = meta.epoch ?? randomBytes(4).toString("hex");
    this.lastSeq = Number(meta.last_seq ?? 0);
    this.agentsLoaded = agents;
    this.messagesLoaded = messages;
    for (const record of messages) {
      this.lastSeq = Math.max(this.lastSeq, record.deliver_seq, record.outcome_seq ?? 0);
    }
  }

  /** Writes have failed: this store (and the backend on it) must be dropped. */
  get failed(): boolean {
    return this.failure !== undefined;
  }

  loadAgents(): AgentRecord[] {
    const agents = this.agentsLoaded;
    this.agentsLoaded = [];
    return agents;
  }
  loadMessages(): MessageRecord[] {
    const messages = this.messagesLoaded;
    this.messagesLoaded = [];
    return messages;
  }

  flush(): Promise<void> {
    if (this.failure) return Promise.reject(this.unavailable());
    return this.pending ?? this.sent;
  }

  protected schedule(): void {
    if (this.pending || this.closed || this.failure) return;
    const pending = new Promise<void>((resolve, reject) => {
      setImmediate(() => {
        this.pending = null;
        if (this.failure) return reject(this.unavailable());
        const batch = this.commit();
        this.sent = batch;
        batch.then(resolve, reject);
      });
    });
    this.pending = pending;
    // A failed write is reported to whoever awaits flush(); do not crash on an unobserved one.
    pending.catch(() => {});
  }

  private commit(): Promise<void> {
    const { agents, messages, seq } = this.takeChanges();
    const args = [this.opts.leaseToken, seq === undefined ? "" : String(seq)];
    for (const [id, record] of agents) {
      if (record) args.push("A", id, JSON.stringify(record));
      else args.push("a", id, "");
    }
    for (const [id, record] of messages) {
      if (record) args.push("M", id, JSON.stringify(record));
      else args.push("m", id, "");
    }
    if (args.length === 2 && args[1] === "") return this.sent;
    const { keys } = this.opts;
    return this.opts.redis
      .eval(FLUSH_SCRIPT, { keys: [keys.lease, keys.meta, keys.agents, keys.messages], arguments: args })
      .then(
        () => {},
        (error: Error) => {
          this.fail(error);
          throw this.unavailable();
        },
      );
  }

  private fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    this.opts.onFailure?.(error);
  }

  private unavailable() {
    const fenced = /FENCED/.test(this.failure?.message ?? "");
    return comsError(
      "UNAVAILABLE",
      fenced
        ? "this hub lost the project lease to another hub; retry (the send may not have been stored)"
        : `the hub cannot reach its Redis store (${this.failure?.message}); retry (the send may not have been stored)`,
    );
  }

  /** What is queued is sent (if the lease still allows); the connection belongs to the cluster. */
  close(): void {
    if (this.closed) return;
    if (!this.failure && !this.unchanged) {
      this.commit().catch(() => {});
    }
    this.closed = true;
  }
}
