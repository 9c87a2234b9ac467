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
  /** Header names in lower case and their values: name, value, name, value… */
  headers: string[];
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
  const headers: string[] = [];
  let contentLength = 0;
  let close = false;
  let host = false;
  for (let pos = eol + 2; pos < text.length; pos = eol + 2) {
    eol = text.indexOf("\r\n", pos);
    if (eol === -1) eol = text.length;
    const colon = text.indexOf(":", pos);
    if (colon <= pos || colon > eol) return OTHER;
    for (let i = pos; i < colon; i++) {
      const code = text.charCodeAt(i);
      if (code > 0x7f || TOKEN[code] !== 1) return OTHER;
    }
    let from = colon + 1;
    let to = eol;
    while (from < to && isSpace(text.charCodeAt(from))) from++;
    while (to > from && isSpace(text.charCodeAt(to - 1))) to--;
    for (let i = from; i < to; i++) if (!isValueChar(text.charCodeAt(i))) return OTHER;
    const name = text.slice(pos, colon).toLowerCase();
    const value = text.slice(from, to);
    for (let k = 0; k < headers.length; k += 2) if (headers[k] === name) return OTHER;
    switch (name) {
      case "content-length":
        if (!DIGITS.test(value)) return OTHER;
        contentLength = Number(value);
        break;
      case "connection": {
        const token = value.toLowerCase();
        if (token === "close") close = true;
        else if (token !== "keep-alive") return OTHER;
        break;
      }
      case "host":
        host = true;
        break;
      case "transfer-encoding":
      case "expect":
      case "upgrade":
        return OTHER;
    }
    headers.push(name, value);
  }
  if (!host) return OTHER;
  return {
    method,
    target: text.slice(sp + 1, targetEnd),
    headers,
    contentLength,
    close,
    size: end + END.length - start,
  };
}

/** A header's value from a head's list (`name` in lower case). */
export function headerOf(headers: readonly string[], name: string): string | undefined {
  for (let i = 0; i < headers.length; i += 2) if (headers[i] === name) return headers[i + 1];
  return undefined;
}
