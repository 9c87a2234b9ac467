/**
 * How big a message is, the one measure every bound uses: the per-message
 * --max-message-bytes and the hub-wide --max-queued-bytes must agree on it.
 */
import { comsError } from "../../contract/errors.ts";

/** A message's size: its prompt's UTF-8 bytes plus its response_schema's JSON bytes. */
export function messageBytes(prompt: string, responseSchema: unknown): number {
  return Buffer.byteLength(prompt) + jsonBytes(responseSchema, "response_schema");
}

/** A reply's size: its text's UTF-8 bytes plus its value's JSON bytes. */
export function replyBytes(text: string, value: unknown): number {
  return Buffer.byteLength(text) + jsonBytes(value, "reply value");
}

/** The JSON size of `value`; one that cannot be encoded (too deep, throws) is a BAD_INPUT, not a 500. */
export function jsonBytes(value: unknown, what: string): number {
  if (value === undefined) return 0;
  let text: string;
  try {
    text = JSON.stringify(value);
  } catch (error) {
    throw comsError("BAD_INPUT", `the ${what} cannot be encoded as JSON (${(error as Error).message})`);
  }
  return Buffer.byteLength(text);
}

/** A byte count for people: MiB from one MiB up, else bytes. */
export function formatBytes(bytes: number): string {
  const mib = 1024 * 1024;
  return bytes >= mib ? `${(bytes / mib).toFixed(1)} MiB` : `${bytes} bytes`;
}
