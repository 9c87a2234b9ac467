/**
 * A client process (run under Node or Bun): connects to the hub named by
 * PI_COMS_NET_SERVER_URL / PI_COMS_NET_AUTH_TOKEN as argv[2], sends argv[4]
 * to argv[3] and prints its own name and the outcome as JSON.
 */
import { connectHub } from "../../hub/client/hub-client.ts";

const [name, to, prompt] = process.argv.slice(2) as [string, string, string];
const client = await connectHub({ name, project: "bunproj" });
const ack = await client.send({ to, prompt });
const outcome = await client.await(ack.msg_id, { timeoutMs: 15_000 });
process.stdout.write(`${JSON.stringify({ self: client.self.name, outcome })}\n`);
await client.close();
