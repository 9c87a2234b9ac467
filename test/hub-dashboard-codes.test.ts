/**
 * One-time sign-in codes against a guesser: a code is short (8 symbols of
 * 31), so it must not be looked at during a lockout, and every wrong guess
 * must cost, from however many loopback addresses (all of 127/8) it comes.
 */
import assert from "node:assert/strict";
import { request } from "node:http";
import { after, before, describe, it } from "node:test";
import { WRONG_CODE_BUDGET } from "../hub/http/dashboard-sessions.ts";
import { signIn } from "./support/admin-feed.ts";
import { type HubProcess, HubWorld, raw, waitFor } from "./support/hub-harness.ts";

async function newCode(hub: HubProcess): Promise<string> {
  const issued = await raw(hub.url, "/dashboard/code", { method: "POST", token: hub.token });
  assert.equal(issued.status, 200, issued.text);
  return (JSON.parse(issued.text) as { code: string }).code;
}

/** A sign-in post from a chosen loopback source address (127.0.0.2, 127.0.0.3, ...). */
function signInFrom(
  url: string,
  secret: string,
  localAddress: string,
): Promise<{ status: number; text: string }> {
  const body = JSON.stringify({ secret });
  return new Promise((resolve, reject) => {
    const req = request(
      new URL("/dashboard/sign-in", url),
      {
        method: "POST",
        localAddress,
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) },
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          text += chunk;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

/** A code-shaped guess that is not `code`. */
function wrongGuess(code: string, i: number): string {
  const symbols = "23456789ABCDEFGHJKMNPQRSTUVWXYZ";
  let guess = `${symbols[i % 31]}${symbols[(i * 7 + 3) % 31]}${symbols[(i * 11 + 5) % 31]}${symbols[(i * 13 + 1) % 31]}-Z2Z2`;
  if (guess === code) guess = `${guess.slice(0, 5)}Y3Y3`;
  return guess;
}

describe("dashboard one-time codes against guessing (real hub)", () => {
  let world: HubWorld;
  let hub: HubProcess;
  before(async () => {
    world = new HubWorld();
    hub = await world.startHub({ args: ["--port", "0"] });
  });
  after(() => world.dispose());

  it("during a lockout a code is not looked at, right or wrong; after it, the right one works", async () => {
    const code = await newCode(hub);
    // 20 wrong tokens from this address: it is locked out.
    for (let i = 0; i < 20; i++) {
      assert.equal((await signIn(hub.url, `a-wrong-token-number-${i}`)).status, 401);
    }
    assert.equal((await signIn(hub.url, wrongGuess(code, 1))).status, 429);
    assert.equal((await signIn(hub.url, code)).status, 429, "a right code waits out the lockout too");
    // Still the token's rule: the right token is served whatever the address did.
    assert.equal((await signIn(hub.url, hub.token)).status, 200);
    // The code was never looked at, so it is still good once the lockout is over.
    const after = await waitFor(
      async () => {
        const answer = await signIn(hub.url, code);
        return answer.status === 429 ? false : answer;
      },
      { what: "the end of the lockout", timeoutMs: 20_000 },
    );
    assert.equal(after.status, 200);
    assert.ok(after.session);
  });

  it(`a code meets at most ${WRONG_CODE_BUDGET} wrong guesses, from however many addresses`, async () => {
    const code = await newCode(hub);
    // Each guess from its own loopback address: no address is ever locked out.
    const answers = [];
    for (let i = 0; i < WRONG_CODE_BUDGET; i++) {
      answers.push(await signInFrom(hub.url, wrongGuess(code, i + 2), `127.0.0.${i + 2}`));
    }
    assert.deepEqual(
      answers.map((a) => a.status),
      Array(WRONG_CODE_BUDGET).fill(401),
    );
    assert.match(answers.at(-1)?.text ?? "", /every live code is void/);
    // The right code is void now: the budget protects it, not the lockout.
    assert.equal((await signInFrom(hub.url, code, "127.0.0.40")).status, 401);
    // A code issued afterwards has a fresh budget and works.
    const next = await newCode(hub);
    assert.equal((await signInFrom(hub.url, next, "127.0.0.41")).status, 200);
  });
});
