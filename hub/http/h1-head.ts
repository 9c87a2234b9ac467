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
const REQUEST_LINE = /^(GET|POST|HEAD|OPTIONS|PUT|DELETE|PATCH) (\/[\x21-\x7e]*) HTTP\/1\.1$/;
// A token name, then a value of visible characters, spaces, tabs and bytes past ASCII (as node takes them).
const HEADER_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[\t ]*([\t\x20-\x7e\x80-\xff]*?)[\t ]*$/;
const DIGITS = /^[0-9]{1,15}$/;

/**
 * The head starting at `start` in `buf`: null while it is incomplete, OTHER
 * when it is not for this reader. `from` is where to start looking for its
 * end (bytes before it were searched already).
 */
export function readHead(buf: Buffer, start: number, from = start): RequestHead | null | typeof OTHER {
  const end = buf.indexOf(END, Math.max(start, from - 3));
  if (end === -1) return buf.length - start > MAX_HEAD_BYTES ? OTHER : null;
  if (end - start > MAX_HEAD_BYTES) return OTHER;
  const lines = buf.toString("latin1", start, end).split("\r\n");
  const request = REQUEST_LINE.exec(lines[0] as string);
  if (!request) return OTHER;
  const headers: string[] = [];
  let contentLength = 0;
  let close = false;
  let host = false;
  for (let i = 1; i < lines.length; i++) {
    const line = HEADER_LINE.exec(lines[i] as string);
    if (!line) return OTHER;
    const name = (line[1] as string).toLowerCase();
    const value = line[2] as string;
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
    method: request[1] as string,
    target: request[2] as string,
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
