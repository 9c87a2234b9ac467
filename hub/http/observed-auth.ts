/**
 * The hub's request check with its refusals counted for the metrics. Same
 * check, same lockout (this only watches RequestAuth's answers).
 */
import type { AuthFailureReason } from "../observe/metrics.ts";
import { type AuthResult, type RemoteAddress, RequestAuth } from "./auth.ts";

export class ObservedAuth extends RequestAuth {
  onFailure: ((reason: AuthFailureReason) => void) | undefined;

  override check(header: (name: string) => string | null | undefined, remote?: RemoteAddress): AuthResult {
    const result = super.check(header, remote);
    if (!result.ok) {
      this.onFailure?.(result.status === 429 ? "locked" : header("authorization") ? "wrong" : "missing");
    }
    return result;
  }

  override checkSecret(verify: () => boolean, remote?: string): AuthResult {
    const result = super.checkSecret(verify, remote);
    if (!result.ok) this.onFailure?.(result.status === 429 ? "locked" : "wrong");
    return result;
  }
}
