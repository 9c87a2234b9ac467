/**
 * The head of an HTTP/1.1 request, read only when it is of the plain kind
 * the hub's agents send: a known method, an origin-form target, HTTP/1.1,
 * one Host, at most one Content-Length and Connection, lines ended by CRLF.
 * Anything else (chunked or Expect bodies, upgrades, HTTP/1.0, folded
 * lines, stray bytes, an oversized head) is `OTHER`: the
 * connection then goes to node:http, which answers it as it always has.
 * So this reader never has to decide a question node's parser decides
 * differently, and never accepts what node would refuse.
 */

export interface RequestHead {
  method: string;
  /** The request target as sent ("/trpc/x?batch=1"). */
  target: string;
  /** The head's text without its blank line: the request line, then each header line behind its CRLF. */
  text: string;
  /** The same with header names in lower case (the same string when they came so). */
  lower: string;
  contentLength: number;
  /** The client asked to close the connection after this answer. */
  close: boolean;
  /** Bytes of the head, blank line included. */
  size: number;
}

/** A request this reader leaves to node:http. */
export const OTHER = Symbol("other");

/** node:http's default cap on a request head (bigger heads get 431 there). */
export const MAX_HEAD_BYTES = 16 * 1024;

const END = Buffer.from("\r\n\r\n");
const DIGITS = /^[0-9]{1,15}$/;

/**
 * The whole head in one pass of the regular expression engine: the request
 * line, then header lines of a token name, a colon and a value of visible
 * characters, spaces, tabs and bytes past ASCII (as node takes them). The
 * first form takes names in lower case only (as fetch sends them), so that
 * the text needs no lower-case copy for finding names.
 */
const LOWER_HEAD =
  /^(GET|POST|HEAD|OPTIONS|PUT|DELETE|PATCH) (\/[\x21-\x7e]*) HTTP\/1\.1(?:\r\n[!#$%&'*+\-.^_`|~0-9a-z]+:[\t\x20-\x7e\x80-\xff]*)*$/;
const ANY_HEAD =
  /^(GET|POST|HEAD|OPTIONS|PUT|DELETE|PATCH) (\/[\x21-\x7e]*) HTTP\/1\.1(?:\r\n[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[\t\x20-\x7e\x80-\xff]*)*$/;
/** The header lines that decide how the request is framed (in the lower-case text). */
const FRAMING = /\r\n(host|content-length|connection|transfer-encoding|expect|upgrade):/g;
const HOST = 1;
const LENGTH = 2;
const CONNECTION = 4;

/**
 * The head starting at `start` in `buf`: null while it is incomplete, OTHER
 * when it is not for this reader. `from` is where to start looking for its
 * end (bytes before it were searched already).
 */
export function readHead(buf: Buffer, start: number, from = start): RequestHead | null | typeof OTHER {
  const end = buf.indexOf(END, Math.max(start, from - 3));
  if (end === -1) return buf.length - start > MAX_HEAD_BYTES ? OTHER : null;
  if (end - start > MAX_HEAD_BYTES) return OTHER;
  const text = buf.toString("latin1", start, end);
  let lower = text;
  let line = LOWER_HEAD.exec(text);
  if (!line) {
    line = ANY_HEAD.exec(text);
    if (!line) return OTHER;
    lower = text.toLowerCase();
  }
  let contentLength = 0;
  let close = false;
  let seen = 0;
  FRAMING.lastIndex = 0;
  for (let m = FRAMING.exec(lower); m; m = FRAMING.exec(lower)) {
    const name = m[1] as string;
    const bit =
      name === "host" ? HOST : name === "content-length" ? LENGTH : name === "connection" ? CONNECTION : 0;
    // Host, Content-Length and Connection at most once; any other framing (chunked, an upgrade,
    // 100-continue) is for node:http.
    if (bit === 0 || seen & bit) return OTHER;
    seen |= bit;
    if (bit === LENGTH) {
      const value = valueAt(text, FRAMING.lastIndex);
      if (!DIGITS.test(value)) return OTHER;
      contentLength = Number(value);
    } else if (bit === CONNECTION) {
      const token = valueAt(lower, FRAMING.lastIndex);
      if (token === "close") close = true;
      else if (token !== "keep-alive") return OTHER;
    }
  }
  if (!(seen & HOST)) return OTHER;
  return {
    method: line[1] as string,
    target: line[2] as string,
    text,
    lower,
    contentLength,
    close,
    size: end + END.length - start,
  };
}

const keys = new Map<string, string>();

/** Headers node:http keeps the first of when one is sent more than once (it joins the rest with ", "). */
const FIRST_ONLY = new Set([
  "age",
  "authorization",
  "content-length",
  "content-type",
  "etag",
  "expires",
  "from",
  "host",
  "if-modified-since",
  "if-unmodified-since",
  "last-modified",
  "location",
  "max-forwards",
  "proxy-authorization",
  "referer",
  "retry-after",
  "server",
  "user-agent",
]);

/** The value of the header line whose name ends at `at` + `key`.length, without surrounding spaces. */
function valueAt(text: string, from: number): string {
  let to = text.indexOf("\r\n", from);
  if (to === -1) to = text.length;
  while (from < to && (text.charCodeAt(from) === 0x20 || text.charCodeAt(from) === 0x09)) from++;
  while (to > from && (text.charCodeAt(to - 1) === 0x20 || text.charCodeAt(to - 1) === 0x09)) to--;
  return text.slice(from, to);
}

/**
 * A header's value (`name` in lower case) from a head: found by its line in
 * the text, so only the values asked for become strings. A name sent more
 * than once gives what node:http's `req.headers` gives: the first value, or
 * all of them joined with ", " (cookies with "; ").
 */
export function headerOf(head: RequestHead, name: string): string | undefined {
  let key = keys.get(name);
  if (key === undefined) {
    key = `\r\n${name}:`;
    if (keys.size < 64) keys.set(name, key);
  }
  const { text, lower } = head;
  let at = lower.indexOf(key);
  if (at === -1) return undefined;
  let value = valueAt(text, at + key.length);
  if (FIRST_ONLY.has(name)) return value;
  const glue = name === "cookie" ? "; " : ", ";
  for (at = lower.indexOf(key, at + key.length); at !== -1; at = lower.indexOf(key, at + key.length)) {
    value += glue + valueAt(text, at + key.length);
  }
  return value;
}
