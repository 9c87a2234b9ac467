/**
 * Ask a reviewer agent for a verdict and wait for it, e.g. from a CI job:
 *
 *   node examples/ask-reviewer.ts "Please review the diff on branch feature/login"
 *   node examples/ask-reviewer.ts --net --to reviewer --timeout 600000 "..."
 *
 * Exits 0 with the reply on stdout, 1 with the error on stderr.
 * (In an installed project, import from "pi-coms/client".)
 */
import { parseArgs } from "node:util";
import { connectHub, connectPeer } from "../client/index.ts";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    net: { type: "boolean" },
    to: { type: "string", default: "reviewer" },
    project: { type: "string" },
    timeout: { type: "string", default: "600000" },
  },
});
const prompt =
  positionals.join(" ") || "Please review the latest change and answer APPROVE or REQUEST_CHANGES.";
const options = { name: "ci-review", ...(values.project && { project: values.project }) };

const client = values.net ? await connectHub(options) : await connectPeer(options);
try {
  const ack = await client.send({ to: values.to, prompt });
  console.error(`asked ${ack.to} (${ack.msg_id}), waiting...`);
  const outcome = await client.await(ack.msg_id, { timeoutMs: Number(values.timeout) });
  if (outcome.state === "reply") {
    console.log(outcome.text);
  } else {
    console.error(outcome.state === "error" ? `${outcome.code}: ${outcome.message}` : "no reply");
    process.exitCode = 1;
  }
} finally {
  await client.close();
}
