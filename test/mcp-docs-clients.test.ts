/**
 * docs/mcp.md's Claude Code and Codex configuration, taken from the page as
 * written (only /path/to/pi-coms, PROJECT, HOST:PORT and TOKEN filled in) and
 * run with the real CLIs: `claude mcp add` (stdio and URL), `--mcp-config`
 * (the JSON file and the URL entry), Codex's config.toml (both tables) and
 * the `--allowedTools` line. Each client asks a peer "reviewer" (on P2P for
 * the stdio forms, on a hub for the URL forms) and must print its answer.
 * The stdio forms run the built `dist/client/cli.js`, as the page says.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { type ComsClient, connectPeer, serve } from "../client/index.ts";
import { echo, type HubProcess, HubWorld } from "./support/hub-harness.ts";
import {
  type ChatRequest,
  type ModelServer,
  type ScriptedReply,
  startModelServer,
} from "./support/model-server.ts";
import {
  type ClaudeRun,
  type ClientRunOptions,
  type CodexRun,
  describeRun,
  runClaude,
  runClaudeCommand,
  runCodex,
} from "./support/real-client-runner.ts";
import { leadScript, toolsOf } from "./support/real-client-scripts.ts";
import { type RealClients, realClients } from "./support/real-clients.ts";

const ROOT = resolve(import.meta.dirname, "..");
const PAGE = readFileSync(join(ROOT, "docs", "mcp.md"), "utf8");
const PROJECT = "docs-check";
const QUESTION = "Does the documented configuration work?";
const ANSWER = `re: ${QUESTION}`;

/** The text of the `### title` section, up to the next heading outside a code block. */
function section(title: string): string {
  const lines = PAGE.split("\n");
  const start = lines.findIndex((l) => l.startsWith(`### ${title}`));
  assert.ok(start >= 0, `docs/mcp.md has no "### ${title}" section`);
  let fenced = false;
  let end = start + 1;
  for (; end < lines.length; end++) {
    const line = lines[end] ?? "";
    if (line.startsWith("```")) fenced = !fenced;
    else if (!fenced && /^#{1,3} /.test(line)) break;
  }
  return lines.slice(start, end).join("\n");
}

/** The fenced code blocks of a text. */
function blocks(text: string): Array<{ lang: string; code: string }> {
  return [...text.matchAll(/```(\w*)\n([\s\S]*?)```/g)].map((m) => ({ lang: m[1] ?? "", code: m[2] ?? "" }));
}

/** Words of a shell command line as the page writes them (double quotes, backslash-newline). */
function shellWords(line: string): string[] {
  return [...line.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2] ?? "");
}

/** The `claude mcp add` commands of the Claude Code section, continuation lines joined. */
function claudeMcpAdd(): string[] {
  return blocks(section("Claude Code"))
    .flatMap((b) => b.code.replace(/\\\n\s*/g, " ").split("\n"))
    .filter((l) => l.startsWith("claude mcp add"));
}

/** The server name of `claude mcp add [options] <name> ...` (every option of the page takes a value). */
function entryName(words: string[]): string {
  for (let i = 3; i < words.length; i++) {
    const word = words[i] ?? "";
    if (!word.startsWith("-")) return word;
    if (!word.includes("=")) i++;
  }
  return "";
}

/** The Codex section's TOML, one string per `[mcp_servers.X]` table (comment lines dropped). */
function codexTables(): Map<string, string> {
  const toml = blocks(section("Codex")).find((b) => b.lang === "toml")?.code ?? "";
  const tables = new Map<string, string>();
  for (const chunk of toml.split(/^(?=\[mcp_servers\.)/m)) {
    const name = /^\[mcp_servers\.([^\]]+)\]/.exec(chunk)?.[1];
    if (name)
      tables.set(
        name,
        chunk
          .split("\n")
          .filter((l) => !l.startsWith("#"))
          .join("\n"),
      );
  }
  return tables;
}

/** Runs one after another: the stdio forms share one HOME (their bridges find the P2P reviewer under it). */
function serial(): <T>(fn: () => Promise<T>) => Promise<T> {
  let tail: Promise<unknown> = Promise.resolve();
  return (fn) => {
    const run = tail.then(fn, fn);
    tail = run.catch(() => undefined);
    return run;
  };
}

describe("docs/mcp.md configuration with the real clients", { concurrency: 3 }, () => {
  let clients: RealClients;
  let server: ModelServer;
  let hubWorld: HubWorld;
  let hub: HubProcess;
  let p2pReviewer: ComsClient | undefined;
  let sharedHome: string;
  const inSharedHome = serial();
  const scripts = new Map<string, (req: ChatRequest) => ScriptedReply | string>();
  const scratch: string[] = [];

  const fill = (text: string) =>
    text
      .replaceAll("/path/to/pi-coms", ROOT)
      .replace(/\bPROJECT\b/g, PROJECT)
      .replaceAll("HOST:PORT", new URL(hub.url).host)
      .replace(/\bTOKEN\b/g, hub.token);

  function tempDir(prefix: string): string {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    scratch.push(dir);
    return dir;
  }

  before(async () => {
    assert.ok(
      existsSync(join(ROOT, "dist", "client", "cli.js")),
      "dist/ is not built: `npm install` (or `npm run build`) builds it",
    );
    sharedHome = tempDir("docs-home-");
    hubWorld = new HubWorld();
    [clients, server, hub] = await Promise.all([realClients(), startModelServer(), hubWorld.startHub()]);
    server.script = (req) => scripts.get(req.model)?.(req);
    p2pReviewer = await connectPeer({
      project: PROJECT,
      name: "reviewer",
      explicit: false,
      env: { PI_COMS_DIR: join(sharedHome, ".pi", "coms") },
    });
    serve(p2pReviewer, async (message) => `re: ${message.prompt}`);
    echo(await hubWorld.connect(hub, { name: "reviewer", explicit: false }));
  });
  after(async () => {
    await p2pReviewer?.close();
    await hubWorld?.dispose();
    await server?.close();
    for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
  });

  /** `claude -p` asking the reviewer through server entry `entry`, allowed the page's --allowedTools. */
  function askWithClaude(
    model: string,
    entry: string,
    opts: Pick<ClientRunOptions, "home" | "cwd" | "mcpConfigJson">,
  ): Promise<ClaudeRun> {
    const allowed = /--allowedTools "([^"]+)"/.exec(section("Claude Code"))?.[1];
    assert.ok(allowed, "the Claude Code section shows an --allowedTools line");
    assert.ok(allowed.includes(`mcp__${entry}__`), `--allowedTools names the ${entry} entry's tools`);
    scripts.set(model, leadScript(toolsOf(entry, "claude"), "reviewer", QUESTION));
    return runClaude({
      clients,
      modelServer: server,
      model,
      prompt: "ask the reviewer",
      allowedTools: allowed.split(","),
      ...opts,
    });
  }

  function assertAnswered(run: ClaudeRun | CodexRun, result: string | undefined): void {
    assert.equal(run.code, 0, describeRun(run));
    assert.match(result ?? "", /^reviewer answered: /, describeRun(run));
    assert.ok(result?.includes(ANSWER), describeRun(run));
  }

  it("shows two `claude mcp add` commands (stdio, URL) and two Codex tables", () => {
    assert.equal(claudeMcpAdd().length, 2);
    assert.deepEqual([...codexTables().keys()], ["pi-coms", "pi-coms-hub"]);
  });

  for (const [index, form] of ["stdio", "URL"].entries()) {
    it(`claude mcp add (${form}), then claude -p calls the tools`, async () => {
      const words = shellWords(fill(claudeMcpAdd()[index] ?? ""));
      const entry = entryName(words);
      const go = async () => {
        const home = form === "stdio" ? sharedHome : tempDir("docs-home-");
        const cwd = tempDir("docs-cwd-");
        const added = await runClaudeCommand({ clients, modelServer: server, home, cwd }, words.slice(1));
        assert.equal(added.code, 0, describeRun(added));
        return askWithClaude(`claude-add-${form}`, entry, { home, cwd });
      };
      const run = form === "stdio" ? await inSharedHome(go) : await go();
      assertAnswered(run, run.json?.result);
    });
  }

  it("claude --mcp-config with the page's JSON file (stdio)", async () => {
    const json = blocks(section("Claude Code")).find((b) => b.lang === "json")?.code ?? "";
    assert.match(json, /"mcpServers"/);
    const run = await inSharedHome(() =>
      askWithClaude("claude-config-stdio", "pi-coms", { home: sharedHome, mcpConfigJson: fill(json) }),
    );
    assertAnswered(run, run.json?.result);
  });

  it("claude --mcp-config with the page's URL entry", async () => {
    const entry = /`(\{"type": "http",[\s\S]*?\})`/.exec(section("Claude Code"))?.[1];
    assert.ok(entry, "the Claude Code section shows the URL form of an entry");
    const config = JSON.stringify({
      mcpServers: { "pi-coms": JSON.parse(fill(entry).replace(/\s*\n\s*/g, " ")) },
    });
    const run = await askWithClaude("claude-config-url", "pi-coms", { mcpConfigJson: config });
    assertAnswered(run, run.json?.result);
  });

  for (const table of ["pi-coms", "pi-coms-hub"]) {
    it(`codex exec with the page's [mcp_servers.${table}]`, async () => {
      const toml = codexTables().get(table);
      assert.ok(toml);
      const model = `codex-${table}`;
      scripts.set(model, leadScript(toolsOf(table, "codex"), "reviewer", QUESTION));
      const stdio = table === "pi-coms";
      const go = () =>
        runCodex({
          clients,
          modelServer: server,
          model,
          prompt: "ask the reviewer",
          extraToml: fill(toml),
          ...(stdio ? { home: sharedHome } : {}),
          env: { PI_COMS_NET_AUTH_TOKEN: hub.token },
        });
      const run = stdio ? await inSharedHome(go) : await go();
      assertAnswered(run, run.lastMessage);
    });
  }
});
