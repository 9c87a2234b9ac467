/**
 * The hub over HTTPS: a hub process with a throwaway self-signed certificate
 * for 127.0.0.1; typed clients in child processes (Node's fetch trusts an
 * extra CA only through NODE_EXTRA_CA_CERTS, read at start) exchange a
 * message and its reply over HTTPS + SSE; an untrusting client fails with a
 * clear error; the token is still required.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { Agent, request } from "node:https";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { pathToFileURL } from "node:url";
import { ensureHub, findHub, healthy, stopHub } from "../hub/client/discovery.ts";
import { HubWorld, ROOT } from "./support/hub-harness.ts";

// Two typed clients in one process: bob answers, alice sends to bob and prints the outcome.
const CLIENT = `
import { connectHub } from ${JSON.stringify(pathToFileURL(join(ROOT, "hub", "client", "hub-client.ts")).href)};
const bob = await connectHub({ name: "bob", project: "tlsproj" });
bob.onInbound((m) => void bob.settle(m.msg_id, { ok: true, text: "re: " + m.prompt }));
const alice = await connectHub({ name: "alice", project: "tlsproj" });
const ack = await alice.send({ to: "bob", prompt: "hello over tls" });
const outcome = await alice.await(ack.msg_id, { timeoutMs: 15000 });
process.stdout.write(JSON.stringify({ url: alice.url, outcome }) + "\\n");
await alice.close();
await bob.close();
`;

describe("hub over TLS", () => {
  let world: HubWorld;
  let cert: string;
  let key: string;
  let url: string;
  let token: string;

  before(async () => {
    world = new HubWorld();
    cert = join(world.dir, "cert.pem");
    key = join(world.dir, "key.pem");
    const made = spawnSync(
      "openssl",
      [
        ...["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1"],
        ...["-addext", "subjectAltName=IP:127.0.0.1", "-days", "1", "-keyout", key, "-out", cert],
      ],
      { encoding: "utf8" },
    );
    assert.equal(
      made.status,
      0,
      made.error ? `openssl: ${made.error.message} (npm test installs it)` : made.stderr,
    );
    const hub = await world.startHub({ project: "tlsproj", args: ["--tls-cert", cert, "--tls-key", key] });
    url = hub.url;
    token = world.secret("tlsproj");
    assert.doesNotMatch(hub.output(), /warning/, "a loopback hub gives no unencrypted-traffic warning");
  });

  after(() => world.dispose());

  const runClient = (env: Record<string, string>) =>
    world.run(process.execPath, ["--input-type=module", "-e", CLIENT], {
      ...world.env,
      PI_COMS_NET_SERVER_URL: url,
      PI_COMS_NET_AUTH_TOKEN: token,
      ...env,
    });

  test("publishes an https:// URL and answers /healthz to whoever trusts its certificate", async () => {
    assert.match(url, /^https:\/\/127\.0\.0\.1:\d+$/);
    const discovered = JSON.parse(
      readFileSync(join(world.env.PI_COMS_NET_DIR as string, "projects", "tlsproj", "server.json"), "utf8"),
    ) as { url: string };
    assert.equal(discovered.url, url);
    assert.equal(await healthy(url, 5000, readFileSync(cert, "utf8")), true);
    assert.equal(await healthy(url, 5000), false, "an untrusted self-signed certificate is refused");
    assert.equal(await healthy(url.replace("https:", "http:"), 5000), false, "no plain HTTP on a TLS hub");
  });

  test("a client that trusts the certificate exchanges a message and its reply", {
    timeout: 30_000,
  }, async () => {
    const { code, out } = await runClient({ NODE_EXTRA_CA_CERTS: cert });
    assert.equal(code, 0, out);
    const line = JSON.parse(out.trim().split("\n").at(-1) as string) as {
      url: string;
      outcome: { state: string; from?: string; text?: string };
    };
    assert.equal(line.url, url);
    assert.equal(line.outcome.state, "reply", out);
    assert.equal(line.outcome.from, "bob");
    assert.equal(line.outcome.text, "re: hello over tls");
  });

  test("a client that does not trust the certificate fails with a clear error", {
    timeout: 30_000,
  }, async () => {
    const { code, out } = await runClient({});
    assert.notEqual(code, 0);
    assert.match(out, /cannot verify the TLS certificate of the hub/);
    assert.match(out, /NODE_EXTRA_CA_CERTS/);
    assert.doesNotMatch(out, new RegExp(token), "the token is never printed");
  });

  test("the token is still required over TLS", { timeout: 30_000 }, async () => {
    const ca = readFileSync(cert, "utf8");
    const status = (headers: Record<string, string>) =>
      new Promise<number>((resolve, reject) => {
        const req = request(new URL("/trpc/agents.list", url), { ca, headers }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on("error", reject);
        req.end();
      });
    assert.equal(await status({}), 401);
    assert.equal(await status({ authorization: "Bearer wrong-token" }), 401);
    const { code, out } = await runClient({ NODE_EXTRA_CA_CERTS: cert, PI_COMS_NET_AUTH_TOKEN: "wrong" });
    assert.notEqual(code, 0);
    assert.match(out, /wrong hub token/);
  });

  test("the dashboard signs in over HTTPS and answers the session in the body, never as a cookie", {
    timeout: 30_000,
  }, async () => {
    const ca = readFileSync(cert, "utf8");
    const { status, setCookie, body } = await new Promise<{
      status: number;
      setCookie: string;
      body: string;
    }>((resolve, reject) => {
      const req = request(
        new URL("/dashboard/sign-in", url),
        { ca, method: "POST", headers: { "content-type": "application/json" } },
        (res) => {
          let text = "";
          res.setEncoding("utf8");
          res.on("data", (chunk: string) => {
            text += chunk;
          });
          res.on("end", () =>
            resolve({
              status: res.statusCode ?? 0,
              setCookie: String(res.headers["set-cookie"] ?? ""),
              body: text,
            }),
          );
        },
      );
      req.on("error", reject);
      req.end(JSON.stringify({ secret: token }));
    });
    assert.equal(status, 200, body);
    assert.equal(setCookie, "");
    assert.match(JSON.parse(body).session, /^\S{32,}$/);
  });

  test("one kept-alive HTTPS connection carries a plain request, the dashboard's sign-in, then a procedure", {
    timeout: 30_000,
  }, async () => {
    // The first request is read by the hub's plain reader, the sign-in hands the connection to node:https.
    await keptAlive(url, token, readFileSync(cert, "utf8"));
  });

  test("a certificate without a key is refused before the hub starts", async () => {
    const { code, out } = await world.runCli(["--project", "other", "--tls-cert", cert]);
    assert.equal(code, 2);
    assert.match(out, /both a certificate and a key/);
  });

  test("under Bun, with the certificate from PI_COMS_NET_TLS_CERT / PI_COMS_NET_TLS_KEY", {
    timeout: 30_000,
  }, async () => {
    const bun = await world.startHub({
      project: "bunproj",
      runtime: "bun",
      env: { PI_COMS_NET_TLS_CERT: cert, PI_COMS_NET_TLS_KEY: key },
    });
    assert.match(bun.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(await healthy(bun.url, 5000, readFileSync(cert, "utf8")), true);
    assert.equal(await healthy(bun.url, 5000), false);
    const { code, out } = await world.run(
      process.execPath,
      ["--input-type=module", "-e", CLIENT.replaceAll("tlsproj", "bunproj")],
      {
        ...world.env,
        PI_COMS_NET_SERVER_URL: bun.url,
        PI_COMS_NET_AUTH_TOKEN: world.secret("bunproj"),
        NODE_EXTRA_CA_CERTS: cert,
      },
    );
    assert.equal(code, 0, out);
    assert.match(out, /"state":"reply".*"text":"re: hello over tls"/);
    // The sign-in goes on to Bun.serve through the hub's pipe, still on the client's TLS connection.
    await keptAlive(bun.url, world.secret("bunproj"), readFileSync(cert, "utf8"));
  });

  test("ensureHub starts a TLS hub from the environment and its health check trusts that certificate", {
    timeout: 30_000,
  }, async () => {
    const env = { ...world.env, PI_COMS_NET_TLS_CERT: cert, PI_COMS_NET_TLS_KEY: key };
    try {
      const started = await ensureHub({ project: "autoproj", store: "memory", env });
      assert.equal(started.startedByMe, true);
      assert.match(started.url, /^https:\/\/127\.0\.0\.1:\d+$/);
      const found = await findHub("autoproj", env);
      assert.equal(found?.url, started.url);
      const again = await ensureHub({ project: "autoproj", store: "memory", env });
      assert.equal(again.startedByMe, false, "the running TLS hub is found, not a second one started");
      assert.equal(again.pid, started.pid);
    } finally {
      await stopHub("autoproj", env);
    }
  });
});

/** A plain request, the dashboard's sign-in (which hands the connection over), then a procedure, on one HTTPS connection. */
async function keptAlive(url: string, token: string, ca: string): Promise<void> {
  const agent = new Agent({ ca, keepAlive: true, maxSockets: 1 });
  const call = (path: string, method: string, body?: string) =>
    new Promise<{ status: number; reused: boolean }>((resolve, reject) => {
      const headers = { "content-type": "application/json" };
      const req = request(new URL(path, url), { agent, method, headers }, (res) => {
        res.resume();
        res.on("end", () => resolve({ status: res.statusCode ?? 0, reused: req.reusedSocket }));
      });
      req.on("error", reject);
      req.end(body);
    });
  try {
    assert.deepEqual(await call("/healthz", "GET"), { status: 200, reused: false });
    assert.deepEqual(await call("/dashboard/sign-in", "POST", JSON.stringify({ secret: token })), {
      status: 200,
      reused: true,
    });
    assert.deepEqual(await call("/trpc/agents.list", "GET"), { status: 401, reused: true });
  } finally {
    agent.destroy();
  }
}
