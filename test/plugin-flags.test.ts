/** Fast unit tests: parsing /coms and /coms-net arguments, completion, and the reply check. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { checkReply, compileResponseSchema } from "../contract/response-schema.ts";
import { COMS_NET_SUBCOMMANDS, COMS_SUBCOMMANDS, completeArgs, FLAGS_FOR } from "../plugin/completion.ts";
import { FlagError, parseComs, parseComsNet, tokenize, withDefaults } from "../plugin/flags.ts";

describe("flag parsing", () => {
  it("tokenizes quotes, escapes and --flag=value", () => {
    assert.deepEqual(tokenize(`start --purpose "two words" --name='a b' x\\ y`), [
      "start",
      "--purpose",
      "two words",
      "--name=a b",
      "x y",
    ]);
    assert.deepEqual(tokenize(`--purpose ""`), ["--purpose", ""]);
    assert.throws(() => tokenize(`--purpose "open`), /unclosed " quote/);
  });

  it("parses /coms start with every identity flag", () => {
    assert.deepEqual(
      parseComs(
        `start --name reviewer --purpose "code reviewer" --project shared.1 --color #1E90FF --explicit`,
      ),
      {
        system: "p2p",
        action: "start",
        flags: {
          name: "reviewer",
          purpose: "code reviewer",
          project: "shared.1",
          color: "#1e90ff",
          explicit: true,
        },
      },
    );
    assert.deepEqual(parseComs(""), { system: "p2p", action: "refresh" });
    assert.deepEqual(parseComs("  status "), { system: "p2p", action: "status" });
    assert.deepEqual(parseComs("start --color=00ff00"), {
      system: "p2p",
      action: "start",
      flags: { color: "#00ff00" },
    });
  });

  it("parses /coms-net start and connect with their own flags", () => {
    assert.deepEqual(
      parseComsNet("start --name a --host 0.0.0.0 --port 9000 --auth-token 0123456789abcdef"),
      {
        system: "hub",
        action: "start",
        flags: { name: "a", host: "0.0.0.0", port: 9000, token: "0123456789abcdef" },
      },
    );
    assert.deepEqual(parseComsNet("connect --url http://10.0.0.5:9000/ --auth-token 0123456789abcdef"), {
      system: "hub",
      action: "connect",
      flags: { url: "http://10.0.0.5:9000", token: "0123456789abcdef" },
    });
    for (const sub of ["disconnect", "stop", "status"]) assert.equal(parseComsNet(sub).action, sub);
    assert.equal(parseComsNet("").action, "refresh");
  });

  it("rejects bad values and unknown things with clear messages", () => {
    const bad: Array<[() => unknown, RegExp]> = [
      [() => parseComs("start --color red"), /bad --color "red": use a hex colour/],
      [() => parseComs("start --color #12345"), /bad --color/],
      [() => parseComs("start --name ../x"), /bad --name "..\/x"/],
      [() => parseComs("start --project 'a b'"), /bad --project/],
      [() => parseComs("start --port 1"), /unknown flag --port for \/coms start \(accepted: --name/],
      [() => parseComs("start --name"), /--name needs a value/],
      [() => parseComs("start coder"), /unexpected argument "coder"/],
      [() => parseComs("launch"), /unknown subcommand "launch" for \/coms \(use: start, stop, status\)/],
      [() => parseComs("stop --name x"), /unknown flag --name for \/coms stop \(it takes no flags\)/],
      [() => parseComsNet("start --port 70000"), /bad --port "70000"/],
      [() => parseComsNet("start --port -1"), /--port needs a value|bad --port/],
      [() => parseComsNet("start --port abc"), /bad --port "abc"/],
      [() => parseComsNet("start --host 'a b'"), /bad --host/],
      [() => parseComsNet("connect --url localhost:9000"), /only http:\/\/ and https:\/\//],
      [() => parseComsNet("connect --url notaurl"), /bad --url "notaurl"/],
      [() => parseComsNet("connect --url http://u:p@host:1"), /not inside the URL/],
      [() => parseComsNet("connect --url http://host:1/?token=x"), /not inside the URL/],
      [() => parseComsNet("connect --auth-token short"), /at least 16 characters/],
      [() => parseComsNet("start --url http://x:1"), /unknown flag --url for \/coms-net start/],
      [() => parseComsNet("join"), /unknown subcommand "join" for \/coms-net/],
      [() => parseComs("start --explicit=maybe"), /--explicit takes no value/],
    ];
    for (const [fn, pattern] of bad) {
      assert.throws(fn, (error: unknown) => {
        assert.ok(error instanceof FlagError, String(error));
        assert.match((error as Error).message, pattern);
        return true;
      });
    }
  });

  it("completes subcommands, then the flags of that subcommand", () => {
    assert.deepEqual(
      completeArgs("coms", "st")?.map((c) => c.label),
      ["start", "stop", "status"],
    );
    assert.deepEqual(
      completeArgs("coms-net", "")?.map((c) => c.label),
      ["start", "connect", "disconnect", "stop", "status"],
    );
    assert.deepEqual(
      completeArgs("coms-net", "connect --name a --")?.map((c) => c.label),
      ["--purpose", "--project", "--color", "--explicit", "--url", "--auth-token"],
    );
    assert.equal(completeArgs("coms-net", "connect --u")?.[0]?.value, "connect --url ");
    assert.equal(completeArgs("coms", "status "), null);
    assert.equal(completeArgs("coms", "zzz"), null);
  });

  it("offers nothing for a word that is already complete, so one Enter runs the command", () => {
    for (const [command, subs] of [
      ["coms", COMS_SUBCOMMANDS],
      ["coms-net", COMS_NET_SUBCOMMANDS],
    ] as const) {
      for (const sub of subs) assert.equal(completeArgs(command, sub), null, `/${command} ${sub}`);
    }
    for (const [key, flags] of Object.entries(FLAGS_FOR)) {
      const [command, sub] = key.split(" ") as ["coms" | "coms-net", string];
      for (const flag of flags) {
        assert.equal(completeArgs(command, `${sub} --${flag}`), null, `/${key} --${flag}`);
        assert.equal(completeArgs(command, `${sub} --${flag}=x`), null, `/${key} --${flag}=x`);
      }
    }
    // A prefix still completes, to the longer word as well.
    assert.deepEqual(
      completeArgs("coms-net", "st")?.map((c) => c.label),
      ["start", "stop", "status"],
    );
    assert.deepEqual(
      completeArgs("coms-net", "start --p")?.map((c) => c.label),
      ["--purpose", "--project", "--port"],
    );
  });

  it("typed flags win over command-line defaults", () => {
    assert.deepEqual(
      withDefaults({ name: "typed", purpose: undefined }, { name: "cli", purpose: "p", explicit: true }),
      {
        name: "typed",
        purpose: "p",
        explicit: true,
      },
    );
  });
});

describe("response_schema check", () => {
  const schema = {
    type: "object",
    properties: { approved: { type: "boolean" }, notes: { type: "array", items: { type: "string" } } },
    required: ["approved"],
  };

  it("accepts matching JSON, also inside one Markdown fence", () => {
    assert.deepEqual(checkReply('{"approved":true}', schema), { ok: true, value: { approved: true } });
    assert.deepEqual(checkReply('```json\n{"approved":false,"notes":["x"]}\n```', schema), {
      ok: true,
      value: { approved: false, notes: ["x"] },
    });
  });

  it("explains a mismatch or non-JSON", () => {
    const notJson = checkReply("sure", schema);
    assert.equal(notJson.ok, false);
    assert.match(notJson.ok ? "" : notJson.message, /not JSON/);
    const wrong = checkReply('{"approved":"yes"}', schema);
    assert.match(wrong.ok ? "" : wrong.message, /does not match the response_schema: approved:/);
    const missing = checkReply("{}", schema);
    assert.equal(missing.ok, false);
  });

  it("refuses a schema it cannot use", () => {
    const result = compileResponseSchema({ type: "nonsense" });
    assert.equal(result.ok, false);
    assert.match(result.ok ? "" : result.message, /not a usable JSON Schema/);
  });
});
