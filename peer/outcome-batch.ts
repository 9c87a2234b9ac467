/** The shape a `messages.outcomes` batch must have before the sender believes any of it. */
import { z } from "zod";
import { Outcome } from "../contract/schemas.ts";

export const OutcomeBatch = z
  .array(z.object({ seq: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER), outcome: Outcome }))
  .max(1024);
