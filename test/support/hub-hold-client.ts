/**
 * A recipient process that takes messages and never answers them: connects
 * to the hub named by PI_COMS_NET_SERVER_URL / PI_COMS_NET_AUTH_TOKEN as
 * argv[2] (project argv[3]), prints "ready" once connected and "got <msg_id>"
 * for each message it is handed, then waits to be killed.
 */
import { connectHub } from "../../hub/client/hub-client.ts";

const [name, project] = process.argv.slice(2) as [string, string];
const client = await connectHub({ name, project });
client.onInbound((message) => process.stdout.write(`got ${message.msg_id}\n`));
process.stdout.write("ready\n");
setInterval(() => {}, 60_000);
