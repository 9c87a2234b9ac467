/**
 * The plain HTTP/1.1 reader the Node hub uses for agents' requests
 * (hub/http/h1-head.ts, h1-connection.ts), on real sockets: which heads it
 * takes and which it leaves to node:http, answers in order on a kept-alive
 * and pipelined connection, bodies split anywhere, bodies over the limit
 * dropped without losing the next request, the hand-over to node:http mid
 * connection, and its deadlines (set short here; the hub uses node's).
 */
import assert from "node:assert/strict";
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { after, describe, it } from "node:test";
import { H1Connections, type H1Options } from "../hub/http/h1-connection.ts";
import { headerOf, OTHER, type RequestHead, readHead } from "../hub/http/h1-head.ts";
import { acceptNode } from "../hub/http/node-h1.ts";
import { header, RawConnection } from "./support/raw-http.ts";

function head(text: string): RequestHead | null | typeof OTHER {
  return readHead(Buffer.from(text, "latin1"), 0);
}

describe("readHead", () => {
  it("reads a plain request's method, target, headers and body length", () => {
    const text =
      "POST /trpc/messages.send?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 12\r\nX-Pi-Coms-Agent: a b \r\n\r\n";
    const parsed = head(`${text}body`);
    assert.ok(parsed && parsed !== OTHER);
    assert.equal(parsed.method, "POST");
    assert.equal(parsed.target, "/trpc/messages.send?x=1");
    assert.equal(headerOf(parsed, "host"), "h");
    assert.equal(headerOf(parsed, "content-length"), "12");
    assert.equal(
      headerOf(parsed, "x-pi-coms-agent"),
      "a b",
      "spaces and tabs around a value are not part of it",
    );
    assert.equal(headerOf(parsed, "x-pi-coms"), undefined, "a name is matched whole");
    assert.equal(headerOf(parsed, "agent"), undefined);
    assert.equal(parsed.contentLength, 12);
    assert.equal(parsed.close, false);
    assert.equal(parsed.size, text.length);
  });

  it("waits for the rest of a head", () => {
    assert.equal(head("GET / HTTP/1.1\r\nHost: h\r\n"), null);
    assert.equal(head("GET / HTT"), null);
  });

  it("leaves every out-of-the-ordinary head to node:http", () => {
    const others = {
      chunked: "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
      "length and chunked":
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
      "two lengths": "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
      "signed length": "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +3\r\n\r\n",
      expect: "POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
      upgrade: "GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
      "HTTP/1.0": "GET / HTTP/1.0\r\nHost: h\r\n\r\n",
      "no host": "GET / HTTP/1.1\r\nAccept: */*\r\n\r\n",
      "repeated host": "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\nHOST: i\r\n\r\n",
      "repeated connection": "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\nconnection: close\r\n\r\n",
      "folded header": "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n b\r\n\r\n",
      "space before colon": "GET / HTTP/1.1\r\nHost: h\r\nX-A : a\r\n\r\n",
      "bare LF": "GET / HTTP/1.1\r\nHost: h\nX-A: a\r\n\r\n",
      "NUL in value": "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\0b\r\n\r\n",
      "unknown method": "BREW / HTTP/1.1\r\nHost: h\r\n\r\n",
      CONNECT: "CONNECT h:443 HTTP/1.1\r\nHost: h\r\n\r\n",
      "absolute target": "GET http://h/ HTTP/1.1\r\nHost: h\r\n\r\n",
      "space in target": "GET /a b HTTP/1.1\r\nHost: h\r\n\r\n",
      "leading blank line": "\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
      "connection token": "GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, te\r\n\r\n",
      "head over 16 KB": `GET / HTTP/1.1\r\nHost: h\r\nX-A: ${"a".repeat(17 * 1024)}\r\n\r\n`,
      "unfinished head over 16 KB": `GET / HTTP/1.1\r\nHost: h\r\nX-A: ${"a".repeat(17 * 1024)}`,
    };
    for (const [name, text] of Object.entries(others)) assert.equal(head(text), OTHER, name);
  });

  it("gives a repeated header as node:http's req.headers does: the first, or all joined", () => {
    const parsed = head(
      "GET / HTTP/1.1\r\nHost: h\r\nAuthorization: a\r\nX-A: 1\r\nauthorization: b\r\nx-a: 2\r\nCookie: c=1\r\nCOOKIE: d=2\r\n\r\n",
    );
    assert.ok(parsed && parsed !== OTHER);
    assert.equal(headerOf(parsed, "authorization"), "a");
    assert.equal(headerOf(parsed, "x-a"), "1, 2");
    assert.equal(headerOf(parsed, "cookie"), "c=1; d=2");
  });

  it("takes Connection: close and header names in any case", () => {
    const parsed = head("GET /x HTTP/1.1\r\nHOST: h\r\nCONNECTION: Close\r\nX-Pi-Coms-Agent: Ab\r\n\r\n");
    assert.ok(parsed && parsed !== OTHER);
    assert.equal(parsed.close, true);
    assert.equal(headerOf(parsed, "x-pi-coms-agent"), "Ab", "the value keeps its case");
  });
});

interface Served {
  port: number;
  /** Requests served by the plain reader, and by node:http, in order. */
  plain: string[];
  node: string[];
  close(): Promise<void>;
}

const servers: Served[] = [];
after(async () => {
  for (const served of servers) await served.close();
});

/** A server that answers the plain reader's requests with "plain <target> <body>" and node:http's with "node …". */
async function serve(overrides: Partial<H1Options> = {}): Promise<Served> {
  const plain: string[] = [];
  const node: string[] = [];
  const http: HttpServer = createHttpServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (chunk) => (body += chunk));
    req.on("end", () => {
      node.push(`${req.method} ${req.url}`);
      res.end(`node ${req.url} ${body}`);
    });
  });
  const [nodeConnection] = http.listeners("connection") as ((socket: Socket) => void)[];
  http.removeAllListeners("connection");
  const connections = new H1Connections({
    takes: (h) => !h.target.startsWith("/node"),
    serve: (h, body, conn) => {
      plain.push(`${h.method} ${h.target}`);
      if (h.target === "/stream") {
        conn.stream("content-type: text/event-stream\r\n")?.write("data: first\n\n");
        return;
      }
      const answer = () =>
        conn.respond(body === null ? 413 : 200, "content-type: text/plain\r\n", `plain ${h.target} ${body}`);
      // Answers after a turn, as the hub's do, so that later requests wait behind them.
      if (h.target.includes("slow")) setTimeout(answer, 20);
      else answer();
    },
    maxBodyBytes: 64,
    headersTimeout: 300,
    requestTimeout: 600,
    keepAliveTimeout: 300,
    ...overrides,
  });
  http.on(
    "connection",
    acceptNode(connections, (socket, read) => {
      nodeConnection?.call(http, socket);
      if (read.length > 0) socket.emit("data", read);
    }),
  );
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  const served: Served = {
    port: (http.address() as AddressInfo).port,
    plain,
    node,
    close: () =>
      new Promise<void>((resolve) => {
        connections.closeAll();
        http.closeAllConnections();
        http.close(() => resolve());
      }),
  };
  servers.push(served);
  return served;
}

/** Write `parts` one write each (after the previous was flushed), then read until `count` answers or close. */
async function exchange(
  port: number,
  parts: (string | Buffer)[],
  count: number,
): Promise<{ answers: { status: number; body: string }[]; closed: boolean }> {
  const connection = await RawConnection.open(port);
  for (const part of parts) await connection.write(part);
  const { answers, closed } = await connection.responses(count);
  if (!closed) connection.destroy();
  return { answers: answers.map(({ status, text }) => ({ status, body: text })), closed };
}

const get = (target: string, extra = "") => `GET ${target} HTTP/1.1\r\nHost: h\r\n${extra}\r\n`;
const post = (target: string, body: string) =>
  `POST ${target} HTTP/1.1\r\nHost: h\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;

describe("H1Connections", { timeout: 30_000 }, () => {
  it("answers pipelined requests in order, one at a time, on one connection", async () => {
    const { port, plain } = await serve();
    const { answers } = await exchange(port, [get("/slow/1") + post("/2", "two") + get("/slow/3")], 3);
    assert.deepEqual(
      answers.map((a) => a.body),
      ["plain /slow/1 ", "plain /2 two", "plain /slow/3 "],
    );
    assert.deepEqual(plain, ["GET /slow/1", "POST /2", "GET /slow/3"]);
  });

  it("reads a request sent a byte at a time, with a character split across writes", async () => {
    const { port } = await serve();
    const bytes = Buffer.from(post("/b", "café ☕") + get("/after"));
    const parts = [...bytes].map((b) => Buffer.from([b]));
    const { answers } = await exchange(port, parts, 2);
    assert.deepEqual(
      answers.map((a) => a.body),
      ["plain /b café ☕", "plain /after "],
    );
  });

  it("answers a body over the limit with 413 and still serves the next request", async () => {
    const { port } = await serve();
    const big = "x".repeat(200);
    const { answers } = await exchange(
      port,
      [post("/big", big).slice(0, 100), post("/big", big).slice(100) + get("/next")],
      2,
    );
    assert.deepEqual(
      answers.map((a) => [a.status, a.body]),
      [
        [413, "plain /big null"],
        [200, "plain /next "],
      ],
    );
  });

  it("hands a connection to node:http at the first request it does not take, after answering those before", async () => {
    const { port, plain, node } = await serve();
    const chunked = "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    const { answers } = await exchange(port, [get("/slow/1") + get("/node/2") + chunked + get("/4")], 4);
    assert.deepEqual(
      answers.map((a) => a.body),
      ["plain /slow/1 ", "node /node/2 ", "node /c abc", "node /4 "],
    );
    assert.deepEqual(plain, ["GET /slow/1"]);
    assert.deepEqual(node, ["GET /node/2", "POST /c", "GET /4"]);
  });

  it("sends the answers before a malformed request before node:http refuses it and closes", async () => {
    const { port } = await serve();
    const { answers, closed } = await exchange(port, [`${get("/a")}${get("/slow/b")}GARBAGE\r\n\r\n`], 4);
    assert.deepEqual(
      answers.map((a) => [a.status, a.body]),
      [
        [200, "plain /a "],
        [200, "plain /slow/b "],
        [400, ""],
      ],
    );
    assert.equal(closed, true);
  });

  it("hands over a request whose head arrives in pieces", async () => {
    const { port, node } = await serve();
    const text = "POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    const { answers } = await exchange(port, [text.slice(0, 20), text.slice(20)], 1);
    assert.equal(answers[0]?.body, "node /x abc");
    assert.deepEqual(node, ["POST /x"]);
  });

  it("ends a stream whose reader has sent its FIN, as a killed client does", async () => {
    const { port } = await serve();
    const connection = await RawConnection.open(port);
    await connection.write(get("/stream"));
    const head = await connection.responseHead();
    assert.equal(head.status, 200);
    assert.equal(header(head, "connection"), "close");
    await connection.bodyUntil("data: first");
    connection.end();
    await connection.closed;
  });

  it("closes after answering a request that asks it to", async () => {
    const { port } = await serve();
    const { answers, closed } = await exchange(port, [get("/a", "Connection: close\r\n") + get("/b")], 2);
    assert.deepEqual(
      answers.map((a) => a.body),
      ["plain /a "],
    );
    assert.equal(closed, true);
  });

  it("answers a head that never ends with 408 and closes", async () => {
    const { port } = await serve();
    const { answers, closed } = await exchange(port, ["GET /late HTTP/1.1\r\nHost: h\r\n"], 2);
    assert.equal(answers[0]?.status, 408);
    assert.equal(closed, true);
  });

  it("answers a body that never ends with 408 and closes", async () => {
    const { port, plain } = await serve();
    const { answers, closed } = await exchange(port, [post("/late", "0123456789").slice(0, -3)], 2);
    assert.equal(answers[0]?.status, 408);
    assert.equal(closed, true);
    assert.deepEqual(plain, []);
  });

  it("drops a connection left idle between requests", async () => {
    const { port } = await serve();
    const { answers, closed } = await exchange(port, [get("/a")], 2);
    assert.equal(answers.length, 1);
    assert.equal(closed, true);
  });
});
