// The admin.watch event stream, read with fetch so the session can travel as
// a header (EventSource cannot send one, which is what pushed sessions into
// cookies, and cookies reach every server on the host). Parses the SSE
// itself, reconnects with a growing pause (each connection starts with a
// fresh snapshot), and treats a stream that says nothing for 45 s (the hub
// pings every 15 s) as dead.

export const SESSION_HEADER = "x-pi-coms-session";
const WATCH = "/trpc/admin.watch";
const SILENT_MS = 45_000;

export class Feed {
  /**
   * @param {string} session the session id, from this page's memory
   * @param {{ event(e: any): void, seen(name: string): void, link(mode: string, text: string): void, ended(why: string): void }} on
   */
  constructor(session, on) {
    this.session = session;
    this.on = on;
    this.stopped = false;
    /** @type {AbortController | undefined} */
    this.abort = undefined;
  }

  start() {
    void this.run();
  }

  stop() {
    this.stopped = true;
    this.abort?.abort();
  }

  async run() {
    let pause = 500;
    while (!this.stopped) {
      const abort = new AbortController();
      this.abort = abort;
      let response;
      try {
        response = await fetch(WATCH, {
          headers: { [SESSION_HEADER]: this.session, accept: "text/event-stream" },
          cache: "no-store",
          signal: abort.signal,
        });
      } catch {
        response = undefined;
      }
      if (this.stopped) return;
      if (response?.status === 401) {
        this.on.ended("your session ended (it expired, or the hub restarted): sign in again");
        return;
      }
      if (response?.ok && response.body) {
        this.on.seen("open");
        this.on.link("live", "live");
        pause = 500;
        await this.read(response.body, abort).catch(() => {});
        if (this.stopped) return;
      }
      this.on.link("reconnecting", "reconnecting…");
      await new Promise((resolve) => setTimeout(resolve, pause));
      pause = Math.min(pause * 2, 5000);
    }
  }

  /** @param {ReadableStream<Uint8Array>} body */
  async read(body, abort) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let silent = setTimeout(() => abort.abort(), SILENT_MS);
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        clearTimeout(silent);
        silent = setTimeout(() => abort.abort(), SILENT_MS);
        buffer += value.replace(/\r\n?/g, "\n");
        let cut = buffer.indexOf("\n\n");
        while (cut >= 0) {
          this.block(buffer.slice(0, cut));
          buffer = buffer.slice(cut + 2);
          cut = buffer.indexOf("\n\n");
        }
      }
    } finally {
      clearTimeout(silent);
      abort.abort();
    }
  }

  /** One SSE event: `event:` names it (none: a data event), `data:` lines carry it. */
  block(text) {
    let name = "message";
    const data = [];
    for (const line of text.split("\n")) {
      if (line.startsWith("event:")) name = line.slice(6).trim();
      else if (line.startsWith("data:")) data.push(line.slice(line.startsWith("data: ") ? 6 : 5));
    }
    this.on.seen(name);
    // `connected` and `ping` (whose data is empty) only say the stream is alive.
    if (data.length === 0 || (name !== "message" && name !== "serialized-error")) return;
    const payload = JSON.parse(data.join("\n"));
    if (name === "message") {
      // tRPC wraps each event in the transformer's envelope ({ json: ... }).
      this.on.event(payload && typeof payload === "object" && "json" in payload ? payload.json : payload);
    } else if (name === "serialized-error") {
      this.on.link("error", `error: ${payload?.json?.message ?? "the hub refused the feed"}`);
    }
  }
}
