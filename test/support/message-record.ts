import type { MessageRecord } from "../../hub/store/store.ts";

/** A finished message's record with every field present, as the backend makes one (a packed one reads back so). */
export function messageRecord(
  msgId: string,
  seq: number,
  state: MessageRecord["state"] = "final",
): MessageRecord {
  return {
    message: {
      msg_id: msgId,
      from: "a",
      from_id: "A",
      to: "b",
      to_id: "B",
      prompt: "",
      hops: 1,
      created_at: 1,
    },
    state,
    expires_at: 10,
    deliver_seq: seq,
    outcome: { state: "reply", msg_id: msgId, from: "b", text: `re ${msgId}`, replied_at: 2 },
    outcome_seq: seq + 1,
    outcome_taken: true,
    done_at: 3,
    bytes: undefined,
  };
}
