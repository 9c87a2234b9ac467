/**
 * How a message record is written into a store row: a JSON array with the
 * fields in a fixed order instead of an object with its keys. A record is
 * written when sent and again when answered, and SQLite's cost per commit
 * follows the bytes it writes (whole WAL pages): without the key names (and
 * without the message id twice more: it is the row's key) a row is half the
 * size. Rows written as objects by an earlier hub are still read.
 */
import type { Message, Outcome } from "../../contract/schemas.ts";
import type { MessageRecord, MessageState } from "./store.ts";

/** The first element of a row in this layout; a later layout takes the next number. */
const LAYOUT = 1;

/** Every field of a message except msg_id, in the wire order (the order messageOf builds them in). */
export const MESSAGE_FIELDS = [
  "from",
  "from_id",
  "to",
  "to_id",
  "prompt",
  "hops",
  "conversation_id",
  "response_schema",
  "chain_id",
  "created_at",
] as const satisfies ReadonlyArray<Exclude<keyof Message, "msg_id">>;

const STATES: readonly MessageState[] = ["queued", "acked", "final"];

/** An answered message's outcome: [0, from, text, replied_at, value?]; a failed one's: [1, code, message]. */
type OutcomeCell =
  | [0, string, string, number]
  | [0, string, string, number, unknown]
  | [1, ErrorCode, string];
type ErrorCode = Extract<Outcome, { state: "error" }>["code"];

export function encodeMessageRow(record: MessageRecord): string {
  const { message } = record;
  const row: unknown[] = [LAYOUT];
  for (const field of MESSAGE_FIELDS) row.push(message[field] ?? null);
  row.push(
    STATES.indexOf(record.state),
    record.expires_at,
    record.deliver_seq,
    outcomeCell(record.outcome, message.msg_id),
    record.outcome_seq ?? null,
    record.outcome_taken ? 1 : 0,
    record.done_at ?? null,
    record.bytes ?? null,
  );
  return JSON.stringify(row);
}

export function decodeMessageRow(msgId: string, text: string): MessageRecord {
  const row = JSON.parse(text) as unknown;
  // An object is a row an earlier hub wrote: the record itself.
  if (!Array.isArray(row)) return row as MessageRecord;
  if (row[0] !== LAYOUT)
    throw new Error(`message ${msgId}: row layout ${String(row[0])} is not one this hub reads`);
  const message: Record<string, unknown> = { msg_id: msgId };
  MESSAGE_FIELDS.forEach((field, i) => {
    const value = row[1 + i];
    if (value !== null) message[field] = value;
  });
  let at = 1 + MESSAGE_FIELDS.length;
  const next = (): unknown => row[at++];
  const state = STATES[next() as number];
  if (!state) throw new Error(`message ${msgId}: unknown state in its row`);
  const record: MessageRecord = {
    message: message as Message,
    state,
    expires_at: next() as number,
    deliver_seq: next() as number,
    outcome: outcomeOf(next() as OutcomeCell | null, msgId),
    outcome_seq: orUndefined(next()) as number | undefined,
    outcome_taken: next() === 1 ? true : undefined,
    done_at: orUndefined(next()) as number | undefined,
    bytes: orUndefined(next()) as number | undefined,
  };
  return record;
}

/** An outcome whose msg_id is not its message's (never made so) keeps its object form: nothing is dropped. */
function outcomeCell(outcome: Outcome | undefined, msgId: string): OutcomeCell | Outcome | null {
  if (!outcome || outcome.msg_id !== msgId) return outcome ?? null;
  if (outcome.state === "reply") {
    return outcome.value === undefined
      ? [0, outcome.from, outcome.text, outcome.replied_at]
      : [0, outcome.from, outcome.text, outcome.replied_at, outcome.value];
  }
  if (outcome.state === "error") return [1, outcome.code, outcome.message];
  return outcome;
}

function outcomeOf(cell: OutcomeCell | Outcome | null, msgId: string): Outcome | undefined {
  if (cell === null) return undefined;
  if (!Array.isArray(cell)) return cell;
  if (cell[0] === 1) {
    return { state: "error", msg_id: msgId, code: cell[1], message: cell[2] };
  }
  // Fields in the order settle() builds them, value before replied_at.
  return cell.length === 5
    ? { state: "reply", msg_id: msgId, from: cell[1], text: cell[2], value: cell[4], replied_at: cell[3] }
    : { state: "reply", msg_id: msgId, from: cell[1], text: cell[2], replied_at: cell[3] };
}

function orUndefined(value: unknown): unknown {
  return value === null ? undefined : value;
}
