/**
 * Checking a reply against the JSON Schema a sender attached to its message.
 * Pure: the receiving plugin calls it before settling, the sending plugin to
 * refuse a schema that cannot be used at all.
 */
import { z } from "zod";
import { checkSchemaBounds } from "./json-bounds.ts";

export type SchemaCheck = { ok: true; value: unknown } | { ok: false; message: string };

/** Compile a JSON Schema object into a zod validator, or explain why it cannot be used. */
export function compileResponseSchema(
  schema: Record<string, unknown>,
): { ok: true; validator: z.ZodType } | { ok: false; message: string } {
  const bounds = checkSchemaBounds(schema);
  if (!bounds.ok) return { ok: false, message: `response_schema cannot be used: ${bounds.message}` };
  try {
    return { ok: true, validator: z.fromJSONSchema(schema as Parameters<typeof z.fromJSONSchema>[0]) };
  } catch (error) {
    return { ok: false, message: `response_schema is not a usable JSON Schema: ${(error as Error).message}` };
  }
}

/** Models often wrap JSON in a Markdown fence; one surrounding fence is not part of the value. */
function unfence(text: string): string {
  const match = /^\s*```[A-Za-z0-9_-]*\s*\n([\s\S]*?)\n?```\s*$/.exec(text);
  return match?.[1] ?? text;
}

/** Parse the reply text as JSON and validate it against the schema. */
export function checkReply(text: string, schema: Record<string, unknown>): SchemaCheck {
  const compiled = compileResponseSchema(schema);
  if (!compiled.ok) return compiled;
  let value: unknown;
  try {
    value = JSON.parse(unfence(text));
  } catch {
    return {
      ok: false,
      message: "the reply is not JSON, but the sender asked for JSON matching its response_schema",
    };
  }
  const result = compiled.validator.safeParse(value);
  if (result.success) return { ok: true, value };
  const issues = result.error.issues
    .slice(0, 5)
    .map((issue) => `${issue.path.length ? issue.path.join(".") : "(root)"}: ${issue.message}`)
    .join("; ");
  return { ok: false, message: `the reply does not match the response_schema: ${issues}` };
}
