import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { ComsError } from "../contract/errors.ts";
import type { Message } from "../contract/schemas.ts";
import { openAdminStream, sample, sessionHeader, signIn } from "./support/admin-feed.ts";
import { type HubProcess, HubWorld, ROOT, type Runtime, raw, waitFor } from "./support/hub-harness.ts";

const scrape = async (hub: HubProcess, token: string | null = hub.token) => {
  const response = await fetch(new URL("/metrics", hub.url), {
    headers: token ? { authorization: `Bearer ${token}` } : {},
  });
  return { status: response.status, type: response.headers.get("content-type"), text: await response.text() };
};

describe("hub /metrics (Prometheus, real hub, real agents)", () => {
  let world: HubWorld;
  let hub: HubProcess;

  before(async () => {
    world = new HubWorld();
    // One send a second, bursts of two: the third quick send is rate limited.
    hub = await world.startHub({ args: ["--port", "0", "--max-sends-per-sec", "1"] });
  });
  after(() => world.dispose());

  it("needs the bearer token", async () => {
    assert.equal((await scrape(hub, null)).status, 401);
    assert.equal((await scrape(hub, "wrong-token-wrong-token")).status, 401);
    const ok = await scrape(hub);
    assert.equal(ok.status, 200);
    assert.match(ok.type ?? "", /^text\/plain/);
    assert.ok(sample(ok.text, "pi_coms_auth_failures_total", 'reason="wrong"') >= 1);
    assert.ok(sample(ok.text, "pi_coms_auth_failures_total", 'reason="missing"') >= 1);
  });

  it("counters, gauges and histograms move with traffic", async () => {
    const before = (await scrape(hub)).text;
    assert.equal(sample(before, "pi_coms_messages_sent_total"), 0);
    const alice = await world.connect(hub, "alice");
    const bob = await world.connect(hub, "bob");
    const held: Message[] = [];
    bob.onInbound((message) => held.push(message));
    const first = await alice.send({ to: "bob", prompt: "one" });
    const second = await alice.send({ to: "bob", prompt: "two" });
    await assert.rejects(alice.send({ to: "bob", prompt: "three" }), (error: ComsError) => {
      assert.equal(error.code, "RATE_LIMITED");
      return true;
    });
    await assert.rejects(bob.send({ to: "nobody", prompt: "?" }), (error: ComsError) => {
      assert.equal(error.code, "UNKNOWN_PEER");
      return true;
    });
    await waitFor(() => held.length === 2, { what: "bob's two messages" });
    // Both are delivered (acknowledged), neither answered: bob's queue holds two.
    const pending = await waitFor(
      async () => {
        const text = (await scrape(hub)).text;
        return sample(text, "pi_coms_messages_delivered_total") === 2 && text;
      },
      { what: "two deliveries in the metrics" },
    );
    assert.equal(sample(pending, "pi_coms_messages_sent_total"), 2);
    assert.equal(sample(pending, "pi_coms_queue_depth", 'agent="bob"'), 2);
    assert.equal(sample(pending, "pi_coms_agents", 'status="online"'), 2);
    assert.ok(sample(pending, "pi_coms_streams", 'kind="inbox"') >= 2);
    assert.equal(sample(pending, "pi_coms_sends_refused_total", 'code="RATE_LIMITED"'), 1);
    assert.equal(sample(pending, "pi_coms_sends_refused_total", 'code="UNKNOWN_PEER"'), 1);
    assert.equal(sample(pending, "pi_coms_send_to_delivered_seconds_count"), 2);
    assert.ok(sample(pending, "pi_coms_store_flush_seconds_count") > 0);

    await bob.settle(first.msg_id, { ok: true, text: "re: one" });
    await bob.settle(second.msg_id, { ok: false, code: "BAD_INPUT", message: "no" });
    assert.equal((await alice.await(first.msg_id, { timeoutMs: 10_000 })).state, "reply");
    const settled = (await scrape(hub)).text;
    assert.equal(sample(settled, "pi_coms_messages_settled_total", 'outcome="reply"'), 1);
    assert.equal(sample(settled, "pi_coms_messages_settled_total", 'outcome="BAD_INPUT"'), 1);
    assert.equal(sample(settled, "pi_coms_send_to_reply_seconds_count"), 1);
    assert.equal(sample(settled, "pi_coms_queue_depth", 'agent="bob"'), 0);
  });
});

for (const runtime of ["node", "bun"] as Runtime[]) {
  describe(`hub dashboard routes and admin.watch (${runtime})`, () => {
    let world: HubWorld;
    let hub: HubProcess;

    before(async () => {
      world = new HubWorld();
      hub = await world.startHub({ args: ["--port", "0"], runtime });
    });
    after(() => world.dispose());

    it("sign-in answers a session id in the body, never a cookie; a wrong token gets nothing", async () => {
      const wrong = await signIn(hub.url, "not-the-hub-token");
      assert.equal(wrong.status, 401);
      assert.equal(wrong.session, undefined);
      const page = await fetch(new URL("/", hub.url));
      // Even without the script a submit cannot put the token in a URL: the form posts.
      assert.match(await page.text(), /<form id="sign-in" method="post" action="\/dashboard\/sign-in">/);
      assert.match(page.headers.get("content-security-policy") ?? "", /default-src 'none'/);
      const response = await fetch(new URL("/dashboard/sign-in", hub.url), {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ secret: hub.token }),
      });
      assert.equal(response.status, 200);
      assert.equal(
        response.headers.get("set-cookie"),
        null,
        "no cookie: cookies reach every port of the host",
      );
      assert.equal(response.headers.get("access-control-allow-origin"), null);
      const { session } = (await response.json()) as { session: string };
      assert.match(session, /^[A-Za-z0-9_-]{40,}$/);
      // A form post (what a page on another origin can send without a preflight) is refused, right token or not.
      const form = await fetch(new URL("/dashboard/sign-in", hub.url), {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", origin: "http://evil.example" },
        body: new URLSearchParams({ secret: hub.token }).toString(),
      });
      assert.equal(form.status, 415);
      assert.doesNotMatch(await form.text(), /session/);
    });

    it("a session reads admin.watch and nothing else: it cannot act as an agent", async () => {
      const { session } = await signIn(hub.url, hub.token);
      assert.ok(session);
      const headers = { ...sessionHeader(session), "content-type": "application/json" };
      const register = await raw(hub.url, "/trpc/agents.register", {
        headers,
        body: JSON.stringify({ json: { name: "intruder" } }),
      });
      assert.equal(register.status, 401);
      const send = await raw(hub.url, "/trpc/messages.send", {
        headers,
        body: JSON.stringify({ json: { to: "x", prompt: "y" } }),
      });
      assert.equal(send.status, 401);
      assert.equal((await raw(hub.url, "/metrics", { headers: sessionHeader(session) })).status, 401);
      await assert.rejects(openAdminStream(hub.url, {}), /401/);
      await assert.rejects(openAdminStream(hub.url, sessionHeader("forged-forged-forged-forged")), /401/);
      // As a cookie it is nothing: only the header counts.
      await assert.rejects(openAdminStream(hub.url, { cookie: `pi_coms_session=${session}` }), /401/);

      const stream = await openAdminStream(hub.url, sessionHeader(session));
      world.defer(() => stream.close());
      const snapshot = await stream.next((event) => event.kind === "snapshot", "the snapshot");
      assert.equal(snapshot.kind === "snapshot" && snapshot.hub.content, true);
      const ann = await world.connect(hub, { name: "ann", purpose: "asks", color: "#112233" });
      const ben = await world.connect(hub, "ben");
      ben.onInbound(
        (message) => void ben.settle(message.msg_id, { ok: true, text: `re: ${message.prompt}` }),
      );
      const ack = await ann.send({ to: "ben", prompt: "hello ben", chain_id: "chain-1" });
      const replied = await stream.next(
        (event) =>
          event.kind === "changes" &&
          event.messages.some((m) => m.msg_id === ack.msg_id && m.state === "replied"),
        "the replied row",
      );
      const row =
        replied.kind === "changes" ? replied.messages.find((m) => m.msg_id === ack.msg_id) : undefined;
      assert.equal(row?.from, "ann");
      assert.equal(row?.to, "ben");
      assert.equal(row?.chain_id, "chain-1");
      assert.equal(row?.bytes, Buffer.byteLength("hello ben"));
      assert.equal(row?.prompt_preview, "hello ben");
      assert.equal(row?.reply_preview, "re: hello ben");
      assert.ok((row?.settled_at ?? 0) >= (row?.created_at ?? Number.POSITIVE_INFINITY));
      // The hub token is admin scope too (what a script or a second tool would use).
      const byToken = await openAdminStream(hub.url, { authorization: `Bearer ${hub.token}` });
      world.defer(() => byToken.close());
      const again = await byToken.next((event) => event.kind === "snapshot", "the token's snapshot");
      assert.ok(
        again.kind === "snapshot" &&
          again.agents.some((card) => card.name === "ann" && card.color === "#112233"),
      );
      assert.ok(again.kind === "snapshot" && again.messages.some((m) => m.msg_id === ack.msg_id));
    });

    it("a one-time code from the token signs in once", async () => {
      const refused = await raw(hub.url, "/dashboard/code", { method: "POST", token: null });
      assert.equal(refused.status, 401);
      const issued = await raw(hub.url, "/dashboard/code", { method: "POST", token: hub.token });
      assert.equal(issued.status, 200);
      const { code } = JSON.parse(issued.text) as { code: string };
      assert.match(code, /^[A-Z0-9]{4}-[A-Z0-9]{4}$/);
      const first = await signIn(hub.url, code.toLowerCase());
      assert.equal(first.status, 200);
      assert.ok(first.session);
      const second = await signIn(hub.url, code);
      assert.equal(second.status, 401);
    });

    it("pi-coms hub open prints the page and a code that signs in", async () => {
      const cli = join(ROOT, "client", "cli.ts");
      const run = await world.run(process.execPath, [cli, "hub", "open", "--project", hub.project]);
      assert.equal(run.code, 0, run.out);
      assert.ok(run.out.includes(`dashboard: ${hub.url}/`), run.out);
      assert.ok(!run.out.includes(hub.token), "the token is not printed");
      const code = /one-time code: (\S+)/.exec(run.out)?.[1] ?? "";
      assert.equal((await signIn(hub.url, code)).status, 200);
      const wrong = await world.run(process.execPath, [
        cli,
        "hub",
        "open",
        "--project",
        hub.project,
        "--auth-token",
        "a-wrong-token-for-sure",
      ]);
      assert.equal(wrong.code, 5, wrong.out);
    });

    it("sign-out ends the session", async () => {
      const { session } = await signIn(hub.url, hub.token);
      assert.ok(session);
      const out = await fetch(new URL("/dashboard/sign-out", hub.url), {
        method: "POST",
        headers: sessionHeader(session),
      });
      assert.equal(out.status, 204);
      await assert.rejects(openAdminStream(hub.url, sessionHeader(session)), /401/);
      // Signing out twice (a session that expired meanwhile) is no error.
      const again = await fetch(new URL("/dashboard/sign-out", hub.url), {
        method: "POST",
        headers: sessionHeader(session),
      });
      assert.equal(again.status, 204);
    });
  });
}

describe("hub dashboard: content off, and the shared lockout", () => {
  let world: HubWorld;
  after(() => world.dispose());
  before(() => {
    world = new HubWorld();
  });

  it("--dashboard-content off sends sizes and states but no text", async () => {
    const hub = await world.startHub({ args: ["--port", "0", "--dashboard-content", "off"] });
    const stream = await openAdminStream(hub.url, { authorization: `Bearer ${hub.token}` });
    world.defer(() => stream.close());
    const snapshot = await stream.next((event) => event.kind === "snapshot");
    assert.equal(snapshot.kind === "snapshot" && snapshot.hub.content, false);
    const a = await world.connect(hub, "a");
    const b = await world.connect(hub, "b");
    b.onInbound((message) => void b.settle(message.msg_id, { ok: true, text: "secret reply" }));
    const ack = await a.send({ to: "b", prompt: "secret prompt" });
    const event = await stream.next(
      (e) => e.kind === "changes" && e.messages.some((m) => m.msg_id === ack.msg_id && m.state === "replied"),
    );
    assert.doesNotMatch(JSON.stringify(event), /secret/);
    const row = event.kind === "changes" ? event.messages.find((m) => m.msg_id === ack.msg_id) : undefined;
    assert.equal(row?.bytes, Buffer.byteLength("secret prompt"));
    assert.equal(row?.reply_bytes, Buffer.byteLength("secret reply"));
  });

  it("rejects a bad --dashboard-content and a bad PI_COMS_NET_DASHBOARD_CONTENT", async () => {
    const flag = await world.runCli(["--project", "x", "--dashboard-content", "maybe"]);
    assert.equal(flag.code, 2);
    assert.match(flag.out, /--dashboard-content must be on or off/);
    const env = await world.runCli(["--project", "x"], { PI_COMS_NET_DASHBOARD_CONTENT: "partly" });
    assert.notEqual(env.code, 0);
    assert.match(env.out, /PI_COMS_NET_DASHBOARD_CONTENT must be on or off/);
  });

  it("wrong tokens at the sign-in form count against the API's lockout", async () => {
    const hub = await world.startHub({ project: "lock", args: ["--port", "0"] });
    for (let i = 0; i < 20; i++) assert.equal((await signIn(hub.url, `wrong-${i}-wrong-wrong`)).status, 401);
    // The address is locked out now: the API answers 429 to it, not 401.
    const api = await raw(hub.url, "/trpc/agents.list", { token: "yet-another-wrong-token" });
    assert.equal(api.status, 429);
    assert.equal((await signIn(hub.url, "and-one-more-wrong-one")).status, 429);
    const metrics = await raw(hub.url, "/metrics", { token: "still-a-wrong-token" });
    assert.equal(metrics.status, 429);
    // Wrong tokens only: the right one still signs in, and still calls the API, from the same address.
    assert.equal((await signIn(hub.url, hub.token)).status, 200);
    assert.equal((await raw(hub.url, "/metrics", { token: hub.token })).status, 200);
  });
});
