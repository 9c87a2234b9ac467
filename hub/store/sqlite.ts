/**
 * The durable store: one SQLite file in the project's hub directory, WAL
 * journal. Changes made during one turn of the event loop are coalesced per
 * row and committed in one transaction, so a burst of sends costs one commit;
 * callers that acknowledge something await that commit first. A committed WAL
 * frame survives kill -9 of the hub (it is in the OS page cache). With
 * synchronous = NORMAL (the default) a WAL commit is not fsynced, so a power
 * loss or kernel crash can take back the last commits (never corrupt the
 * file); FULL (`--sqlite-sync full`) pays an fsync per commit for that case.
 */
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import type { SqliteSync } from "../../lib/env.ts";
import { ensurePrivateDir } from "../../lib/private-fs.ts";
import { CoalescingStore } from "./coalescing-store.ts";
import { decodeMessageRow, encodeMessageRow } from "./message-row.ts";
import { openSqlite, type SqliteDatabase, type SqliteStatement } from "./sqlite-driver.ts";
import type { AgentRecord, HubStore, MessageRecord } from "./store.ts";

export const STORE_FILE = "hub.sqlite";

/**
 * Sequence numbers are reserved on disk this many at a time, so a commit
 * rewrites the `last_seq` row only when a block runs out, not every time.
 * After a restart numbering resumes past the reserved block: event ids only
 * need to grow, and a gap is never read as a loss.
 */
const SEQ_BLOCK = 4096;

/** What flush() returns when nothing waits to be written: one promise, not one per call. */
const SETTLED = Promise.resolve();
const ignore = (): void => {};

export async function openSqliteStore(dir: string, opts: { sync?: SqliteSync } = {}): Promise<HubStore> {
  ensurePrivateDir(dir);
  const db = await openSqlite(join(dir, STORE_FILE));
  try {
    db.exec("PRAGMA journal_mode = WAL");
    db.exec(`PRAGMA synchronous = ${opts.sync === "full" ? "FULL" : "NORMAL"}`);
    // One hub per store: a second hub on the same file fails here instead of corrupting queues.
    db.exec("PRAGMA locking_mode = EXCLUSIVE");
    // WITHOUT ROWID: keyed by the id alone, so a write touches one b-tree, not a table and its key index.
    // A store made before keeps its tables as they are; both layouts read and write the same.
    db.exec(`CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS agents (id TEXT PRIMARY KEY, data TEXT NOT NULL) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS messages (id TEXT PRIMARY KEY, data TEXT NOT NULL) WITHOUT ROWID;`);
    db.exec("BEGIN IMMEDIATE");
    db.exec("COMMIT");
  } catch (error) {
    db.close();
    const message = error instanceof Error ? error.message : String(error);
    throw new Error(`cannot open the hub store in ${dir} (is another hub using it?): ${message}`);
  }
  return new SqliteStore(db);
}

class SqliteStore extends CoalescingStore implements HubStore {
  readonly kind = "sqlite" as const;
  readonly epoch: string;
  readonly sync: SqliteSync;
  private readonly db: SqliteDatabase;
  private readonly putAgentStmt: SqliteStatement;
  private readonly delAgentStmt: SqliteStatement;
  private readonly putMessageStmt: SqliteStatement;
  private readonly delMessageStmt: SqliteStatement;
  private readonly putMetaStmt: SqliteStatement;
  /** Prepared once: `exec` would parse them again on every commit. */
  private readonly beginStmt: SqliteStatement;
  private readonly commitStmt: SqliteStatement;
  private pending: Promise<void> | null = null;
  private closed = false;
  /** The highest sequence number reserved on disk (see SEQ_BLOCK). */
  private reservedSeq: number;

  constructor(db: SqliteDatabase) {
    super();
    this.db = db;
    this.putAgentStmt = db.prepare("INSERT OR REPLACE INTO agents (id, data) VALUES (?, ?)");
    this.delAgentStmt = db.prepare("DELETE FROM agents WHERE id = ?");
    this.putMessageStmt = db.prepare("INSERT OR REPLACE INTO messages (id, data) VALUES (?, ?)");
    this.delMessageStmt = db.prepare("DELETE FROM messages WHERE id = ?");
    this.putMetaStmt = db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)");
    this.beginStmt = db.prepare("BEGIN");
    this.commitStmt = db.prepare("COMMIT");
    const meta = new Map(
      (db.prepare("SELECT key, value FROM meta").all() as Array<{ key: string; value: string }>).map(
        (row) => [row.key, row.value],
      ),
    );
    // 1 is NORMAL, 2 FULL (and 3 EXTRA, which the hub never sets).
    const [pragma] = db.prepare("PRAGMA synchronous").all() as Array<{ synchronous: number }>;
    this.sync = (pragma?.synchronous ?? 1) >= 2 ? "full" : "normal";
    this.epoch = meta.get("epoch") ?? randomBytes(4).toString("hex");
    if (!meta.has("epoch")) this.putMetaStmt.run("epoch", this.epoch);
    this.lastSeq = Number(meta.get("last_seq") ?? 0);
    this.reservedSeq = this.lastSeq;
  }

  loadAgents(): AgentRecord[] {
    const rows = this.db.prepare("SELECT data FROM agents").all() as Array<{ data: string }>;
    return rows.map((row) => JSON.parse(row.data) as AgentRecord);
  }

  loadMessages(): MessageRecord[] {
    const rows = this.db.prepare("SELECT id, data FROM messages").all() as Array<{
      id: string;
      data: string;
    }>;
    const records = rows.map((row) => decodeMessageRow(row.id, row.data));
    // Sequence numbers are written with the rows, so the highest one on disk is authoritative.
    for (const record of records) {
      this.lastSeq = Math.max(this.lastSeq, record.deliver_seq, record.outcome_seq ?? 0);
    }
    return records;
  }

  flush(): Promise<void> {
    return this.pending ?? SETTLED;
  }

  protected schedule(): void {
    if (this.pending || this.closed) return;
    this.pending = new Promise((resolve, reject) => {
      this.resolvePending = resolve;
      this.rejectPending = reject;
    });
    // A failed commit is reported to whoever awaits flush(); do not crash on an unobserved one.
    this.pending.catch(ignore);
    setImmediate(this.commitPending);
  }

  /** Settle the promise flush() hands out for the changes waiting now. */
  private resolvePending: () => void = ignore;
  private rejectPending: (error: unknown) => void = ignore;

  /** The next turn's commit (bound once, not a closure per commit). */
  private readonly commitPending = (): void => {
    const resolve = this.resolvePending;
    const reject = this.rejectPending;
    this.pending = null;
    this.resolvePending = ignore;
    this.rejectPending = ignore;
    if (this.closed) {
      resolve();
      return;
    }
    try {
      this.commit();
      resolve();
    } catch (error) {
      reject(error);
    }
  };

  private commit(): void {
    if (this.unchanged) return;
    const { agents, messages, seq } = this.takeChanges();
    this.beginStmt.run();
    try {
      for (const [id, record] of agents) {
        if (record) this.putAgentStmt.run(id, JSON.stringify(record));
        else this.delAgentStmt.run(id);
      }
      for (const [id, record] of messages) {
        if (record) this.putMessageStmt.run(id, encodeMessageRow(record));
        else this.delMessageStmt.run(id);
      }
      if (seq !== undefined && seq > this.reservedSeq) {
        this.putMetaStmt.run("last_seq", String(seq + SEQ_BLOCK));
      }
      this.commitStmt.run();
      if (seq !== undefined && seq > this.reservedSeq) this.reservedSeq = seq + SEQ_BLOCK;
    } catch (error) {
      this.db.exec("ROLLBACK");
      throw error;
    }
  }

  close(): void {
    if (this.closed) return;
    this.commit();
    this.closed = true;
    this.db.close();
  }
}
