/**
 * What a hub client proves itself with on every request: the hub token
 * (re-read from its secret file when the hub rotates it) and, once
 * registered, the agent's own id and token. The headers are read per
 * request, so they are built again only when one of these changed.
 */
import { AGENT_ID_HEADER, AGENT_TOKEN_HEADER } from "../http/auth.ts";
import { readSecret } from "../secret.ts";

export class HubCredentials {
  private token: string;
  private readonly secretPath: string | undefined;
  private agent: { id: string; token: string } | undefined;
  private cached: Record<string, string> | undefined;

  /** `secretPath`: where the hub token can be read again (undefined: a token given once). */
  constructor(token: string, secretPath: string | undefined) {
    this.token = token;
    this.secretPath = secretPath;
  }

  /** The agent's id on the hub (undefined: not registered yet, or starting over as a new agent). */
  get agentId(): string | undefined {
    return this.agent?.id;
  }

  /** What a registration sends to come back as the same agent. */
  get resume(): { id: string; agent_token: string } | undefined {
    return this.agent ? { id: this.agent.id, agent_token: this.agent.token } : undefined;
  }

  registered(id: string, agentToken: string): void {
    this.agent = { id, token: agentToken };
    this.cached = undefined;
  }

  /** The hub knows this id under another credential: the next registration is a new agent. */
  forget(): void {
    this.agent = undefined;
    this.cached = undefined;
  }

  /** A 401 may mean the hub token was rotated: whether the secret file holds a new one (now in use). */
  reread(): boolean {
    if (!this.secretPath) return false;
    const token = readSecret(this.secretPath);
    if (!token || token === this.token) return false;
    this.token = token;
    this.cached = undefined;
    return true;
  }

  headers(): Record<string, string> {
    if (this.cached) return this.cached;
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}` };
    if (this.agent) {
      headers[AGENT_ID_HEADER] = this.agent.id;
      headers[AGENT_TOKEN_HEADER] = this.agent.token;
    }
    this.cached = headers;
    return headers;
  }
}
