/**
 * Where one project lives in Redis. Every key shares the `{project}` hash tag,
 * so a Redis Cluster keeps them in one slot (the flush script touches them
 * together) and one Redis can serve many projects side by side.
 */
export interface RedisKeys {
  prefix: string;
  /** The hub lease: the token of the hub that runs the backend. */
  lease: string;
  /** Where the lease holder serves (its token and internal URL), for the other hubs to forward to. */
  holder: string;
  /** epoch and last_seq. */
  meta: string;
  /** agent id → AgentRecord JSON (credential hashes only). */
  agents: string;
  /** msg_id → MessageRecord JSON. */
  messages: string;
}

export function redisKeys(project: string): RedisKeys {
  const prefix = `pi-coms:{${project}}:`;
  return {
    prefix,
    lease: `${prefix}lease`,
    holder: `${prefix}holder`,
    meta: `${prefix}meta`,
    agents: `${prefix}agents`,
    messages: `${prefix}messages`,
  };
}
