/**
 * The head of an HTTP/1.1 request, read only when it is of the plain kind
 * the hub's agents send: a known method, an origin-form target, HTTP/1.1,
 * a Host, at most one Content-Length, each header once, lines ended by CRLF.
 * Anything else (chunked or Expect bodies, upgrades, HTTP/1.0, folded or
 * repeated headers, stray bytes, an oversized head) is `OTHER`: the
 * connection then goes to node:http, which answers it as it always has.
 * So this reader never has to decide a question node's parser decides
 * differently, and never accepts what node would refuse.
 */

export interface RequestHead {
  method: string;
  /** The request target as sent ("/trpc/x?batch=1"). */
  target: string;
  /** The head's text (request line and header lines, without the blank line). */
  text: string;
  /** The same with header names in lower case (the same string when they are already). */
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

/** Characters of a header name (RFC 9110 token), by code. */
const TOKEN = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
  TOKEN[c.charCodeAt(0)] = 1;

const isSpace = (code: number) => code === 0x20 || code === 0x09;
/** A value's characters: visible ASCII, space, tab, and bytes past ASCII (as node takes them). */
const isValueChar = (code: number) => (code >= 0x20 && code !== 0x7f) || code === 0x09;

function methodOf(name: string): string | undefined {
  switch (name) {
    case "GET":
    case "POST":
    case "HEAD":
    case "OPTIONS":
    case "PUT":
    case "DELETE":
    case "PATCH":
      return name;
  }
  return undefined;
}

/**
 * The head starting at `start` in `buf`: null while it is incomplete, OTHER
 * when it is not for this reader. `from` is where to start looking for its
 * end (bytes before it were searched already). Read with character loops
 * rather than regular expressions: it runs for every request.
 */
export function readHead(buf: Buffer, start: number, from = start): RequestHead | null | typeof OTHER {
  const end = buf.indexOf(END, Math.max(start, from - 3));
  if (end === -1) return buf.length - start > MAX_HEAD_BYTES ? OTHER : null;
  if (end - start > MAX_HEAD_BYTES) return OTHER;
  const text = buf.toString("latin1", start, end);
  // The request line: METHOD SP /target SP HTTP/1.1
  let eol = text.indexOf("\r\n");
  if (eol === -1) eol = text.length;
  const sp = text.indexOf(" ");
  const method = sp > 0 ? methodOf(text.slice(0, sp)) : undefined;
  if (!method || text.charCodeAt(sp + 1) !== 0x2f) return OTHER;
  const targetEnd = eol - 9;
  if (targetEnd <= sp + 1 || text.slice(targetEnd, eol) !== " HTTP/1.1") return OTHER;
  for (let i = sp + 1; i < targetEnd; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x21 || code > 0x7e) return OTHER;
  }
  let contentLength = 0;
  let close = false;
  let host = false;
  let upper = false;
  const first = eol + 2;
  for (let pos = first; pos < text.length; pos = eol + 2) {
    eol = text.indexOf("\r\n", pos);
    if (eol === -1) eol = text.length;
    const colon = text.indexOf(":", pos);
    if (colon <= pos || colon > eol) return OTHER;
    for (let i = pos; i < colon; i++) {
      const code = text.charCodeAt(i);
      if (code > 0x7f || TOKEN[code] !== 1) return OTHER;
      if (code >= 0x41 && code <= 0x5a) upper = true;
    }
    let from = colon + 1;
    let to = eol;
    while (from < to && isSpace(text.charCodeAt(from))) from++;
    while (to > from && isSpace(text.charCodeAt(to - 1))) to--;
    for (let i = from; i < to; i++) if (!isValueChar(text.charCodeAt(i))) return OTHER;
    if (repeated(text, first, pos, colon)) return OTHER;
    // Only the names that decide the framing are read now; other values are sliced when asked for.
    switch (colon - pos) {
      case 4:
        if (sameName(text, pos, "host")) host = true;
        break;
      case 6:
        if (sameName(text, pos, "expect")) return OTHER;
        break;
      case 7:
        if (sameName(text, pos, "upgrade")) return OTHER;
        break;
      case 10:
        if (sameName(text, pos, "connection")) {
          const token = text.slice(from, to).toLowerCase();
          if (token === "close") close = true;
          else if (token !== "keep-alive") return OTHER;
        }
        break;
      case 14:
        if (sameName(text, pos, "content-length")) {
          const value = text.slice(from, to);
          if (!DIGITS.test(value)) return OTHER;
          contentLength = Number(value);
        }
        break;
      case 17:
        if (sameName(text, pos, "transfer-encoding")) return OTHER;
        break;
    }
  }
  if (!host) return OTHER;
  return {
    method,
    target: text.slice(sp + 1, targetEnd),
    text,
    lower: upper ? text.toLowerCase() : text,
    contentLength,
    close,
    size: end + END.length - start,
  };
}

/** Whether the header name at [pos, colon) of `text` is `name` (lower case), in any case. */
function sameName(text: string, pos: number, name: string): boolean {
  for (let i = 0; i < name.length; i++)
    if ((text.charCodeAt(pos + i) | 0x20) !== name.charCodeAt(i)) return false;
  return true;
}

/** Whether a header line before `pos` (from `first`) has the name at [pos, colon), in any case. */
function repeated(text: string, first: number, pos: number, colon: number): boolean {
  const length = colon - pos;
  for (let line = first; line < pos; line = text.indexOf("\r\n", line) + 2) {
    if (text.charCodeAt(line + length) !== 0x3a) continue;
    let i = 0;
    while (i < length && (text.charCodeAt(line + i) | 0x20) === (text.charCodeAt(pos + i) | 0x20)) i++;
    if (i === length) return true;
  }
  return false;
}

const keys = new Map<string, string>();

/**
 * A header's value (`name` in lower case) from a head: found by its line in
 * the text, so only the values asked for become strings. Each name occurs
 * at most once (readHead leaves repeated names to node:http).
 */
export function headerOf(head: RequestHead, name: string): string | undefined {
  let key = keys.get(name);
  if (key === undefined) {
    key = `\r\n${name}:`;
    if (keys.size < 64) keys.set(name, key);
  }
  const at = head.lower.indexOf(key);
  if (at === -1) return undefined;
  const { text } = head;
  let from = at + key.length;
  let to = text.indexOf("\r\n", from);
  if (to === -1) to = text.length;
  while (from < to && isSpace(text.charCodeAt(from))) from++;
  while (to > from && isSpace(text.charCodeAt(to - 1))) to--;
  return text.slice(from, to);
}
