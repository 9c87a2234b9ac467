/** Benchmark floor: a plain node:net newline-JSON echo server on a Unix socket (path in argv[2]). */
import { createServer } from "node:net";

const path = process.argv[2] as string;
const server = createServer((socket) => {
  socket.setEncoding("utf8");
  let buffer = "";
  socket.on("data", (chunk: string) => {
    buffer += chunk;
    let end = buffer.indexOf("\n");
    while (end !== -1) {
      const message = JSON.parse(buffer.slice(0, end));
      socket.write(`${JSON.stringify(message)}\n`);
      buffer = buffer.slice(end + 1);
      end = buffer.indexOf("\n");
    }
  });
  socket.on("error", () => {});
});
server.listen(path, () => process.stdout.write("ready\n"));
process.stdin.resume();
process.stdin.on("end", () => process.exit(0));
