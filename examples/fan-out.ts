/**
 * Send one task to several agents at once and gather their replies:
 *
 *   node examples/fan-out.ts --to coder1,coder2,coder3 "Propose a name for the retry helper"
 *
 * Sends run in parallel; each reply (or error) is printed under the agent's
 * name once all have answered. Exits 1 if any of them failed.
 * (In an installed project, import from "pi-coms/client".)
 */
import { parseArgs } from "node:util";
import { connectHub, connectPeer, type Outcome } from "../client/index.ts";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    net: { type: "boolean" },
    to: { type: "string", default: "coder1,coder2,coder3" },
    project: { type: "string" },
    timeout: { type: "string", default: "600000" },
  },
});
const agents = values.to.split(",").filter(Boolean);
const prompt = positionals.join(" ") || "Suggest one improvement to the error handling in src/.";
const options = { name: "fan-out", ...(values.project && { project: values.project }) };

const client = values.net ? await connectHub(options) : await connectPeer(options);
try {
  const results = await Promise.all(
    agents.map(async (to): Promise<[string, Outcome | Error]> => {
      try {
        const ack = await client.send({ to, prompt, conversation_id: "fan-out" });
        return [to, await client.await(ack.msg_id, { timeoutMs: Number(values.timeout) })];
      } catch (error) {
        return [to, error as Error];
      }
    }),
  );
  for (const [to, result] of results) {
    if (result instanceof Error) console.log(`## ${to}: failed to send: ${result.message}`);
    else if (result.state === "reply") console.log(`## ${to}\n${result.text}`);
    else
      console.log(`## ${to}: ${result.state === "error" ? `${result.code}: ${result.message}` : "no reply"}`);
    if (result instanceof Error || result.state !== "reply") process.exitCode = 1;
  }
} finally {
  await client.close();
}
