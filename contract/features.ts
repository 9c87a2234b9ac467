/**
 * The register call's additive fields: how a client keeps its presence, and
 * what a hub offers beyond the base contract. Older clients leave them out
 * and older hubs ignore them, so both keep working with newer ones.
 */
import { z } from "zod";
import { RegisterInput, RegisterResult } from "./schemas.ts";

/**
 * "ride-acks": acks may ride along with send, settle and heartbeat (their `ack` field).
 * "stream-presence": a client that registered with presence "stream" is kept online by its open inbox stream.
 */
export const HUB_FEATURES = ["ride-acks", "stream-presence"];

export const RegisterRequest = RegisterInput.extend({
  /**
   * "stream": this client keeps its inbox stream open and heartbeats only when
   * its card changes or it has no stream. Absent: presence from heartbeats alone.
   */
  presence: z.enum(["heartbeat", "stream"]).optional(),
});

export const RegisterAnswer = RegisterResult.extend({
  /** What this hub offers beyond the base contract (HUB_FEATURES); absent from older hubs. */
  features: z.array(z.string().max(64)).max(32).optional(),
});
