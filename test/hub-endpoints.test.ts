/** Several hub URLs on the client: parsing, the order they are tried in, how often the client moves on. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { ComsError } from "../contract/errors.ts";
import { hubRotation, nextHubUrl, parseHubUrls, startOnFirst } from "../hub/client/endpoints.ts";

test("a comma-separated list: trimmed, trailing slashes dropped, repeats removed", () => {
  assert.deepEqual(parseHubUrls(" http://a:1/, http://b:2,,http://a:1 "), ["http://a:1", "http://b:2"]);
  assert.deepEqual(parseHubUrls("https://one:9000"), ["https://one:9000"]);
});

test("round robin from the one in use, and at most once per gap", () => {
  const urls = ["http://a:1", "http://b:2", "http://c:3"];
  assert.equal(nextHubUrl(urls, "http://a:1/"), "http://b:2");
  assert.equal(nextHubUrl(urls, "http://c:3"), "http://a:1");
  assert.equal(nextHubUrl(urls, "http://elsewhere:4"), "http://a:1");
  const rotate = hubRotation(urls, 60_000);
  assert.equal(rotate("http://a:1"), "http://b:2");
  assert.equal(
    rotate("http://b:2"),
    undefined,
    "a hub answering 'retry' does not send the client round the list",
  );
});

test("start tries each URL in turn; a refusal every hub would repeat stops at once", async () => {
  const tried: string[] = [];
  const client = {
    url: "",
    async start() {
      tried.push(this.url);
      if (this.url !== "http://c:3") throw new TypeError("fetch failed");
    },
  };
  await startOnFirst(client, ["http://a:1", "http://b:2", "http://c:3"]);
  assert.deepEqual(tried, ["http://a:1", "http://b:2", "http://c:3"]);
  assert.equal(client.url, "http://c:3");

  tried.length = 0;
  const refused = {
    url: "",
    async start() {
      tried.push(this.url);
      throw new ComsError("UNAUTHORIZED", "wrong token");
    },
  };
  await assert.rejects(startOnFirst(refused, ["http://a:1", "http://b:2"]), /wrong token/);
  assert.deepEqual(tried, ["http://a:1"]);
});
