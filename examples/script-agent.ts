/**
 * A script that joins as an agent and answers prompts, no LLM involved:
 *
 *   node examples/script-agent.ts --name reviewer
 *   node examples/script-agent.ts --net --name reviewer --max 1
 *
 * Every prompt is answered (here: a canned review with a word count); a
 * handler that throws answers with an error, so senders never hang.
 * Ctrl-C (or --max N answers) leaves cleanly.
 * (In an installed project, import from "pi-coms/client".)
 */
import { parseArgs } from "node:util";
import { connectHub, connectPeer, serve } from "../client/index.ts";

const { values } = parseArgs({
  options: {
    net: { type: "boolean" },
    name: { type: "string", default: "reviewer" },
    project: { type: "string" },
    max: { type: "string" },
  },
});
const options = {
  name: values.name,
  purpose: "answers prompts from a script",
  explicit: false, // an agent is meant to be found
  ...(values.project && { project: values.project }),
};

const client = values.net ? await connectHub(options) : await connectPeer(options);
console.log(`${client.self.name} is listening in ${client.self.project} (${client.transport})`);

let done = () => {};
const finished = new Promise<void>((resolve) => {
  done = resolve;
});
const max = values.max === undefined ? Number.POSITIVE_INFINITY : Number(values.max);

const serving = serve(
  client,
  async (message) => {
    console.log(`<- ${message.from}: ${message.prompt}`);
    if (message.prompt.includes("FAIL")) throw new Error("asked to fail");
    const words = message.prompt.split(/\s+/).filter(Boolean).length;
    return `${client.self.name} read ${words} words: looks good to me.`;
  },
  {
    onSettled: (message, result) => {
      console.log(`-> ${message.from}: ${result.ok ? result.text : `${result.code}: ${result.message}`}`);
      if (serving.settled >= max) {
        void serving.stop(); // before the next prompt starts
        done();
      }
    },
  },
);

process.once("SIGINT", done);
process.once("SIGTERM", done);
await finished;
await serving.stop();
await client.close();
