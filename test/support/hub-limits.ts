/** The limits the tests give a HubBackend they build in process: roomy, so no test trips one it does not mean to. */
import type { HubLimits } from "../../hub/backend/backend.ts";

export const TEST_LIMITS: HubLimits = {
  maxHops: 5,
  messageTtlMs: 60_000,
  staleAfterMs: 30_000,
  offlineAfterMs: 60_000,
  maxMessageBytes: 65_536,
  maxAgents: 100,
};
