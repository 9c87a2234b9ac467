/** Several hub URLs on the client: parsing, the order they are tried in, how often the client moves on. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { ComsError } from "../contract/errors.ts";
import { nextStartPosition, parseHubUrls, spreadOrder, startOnFirst } from "../hub/client/endpoints.ts";

test("a comma-separated list: trimmed, trailing slashes dropped, repeats removed", () => {
  assert.deepEqual(parseHubUrls(" http://a:1/, http://b:2,,http://a:1 "), ["http://a:1", "http://b:2"]);
  assert.deepEqual(parseHubUrls("https://one:9000"), ["https://one:9000"]);
});

test("each client of a process starts one further along the list: its own preferred hub first", () => {
  const urls = ["http://a:1", "http://b:2", "http://c:3"];
  assert.deepEqual(spreadOrder(urls, 4), ["http://b:2", "http://c:3", "http://a:1"]);
  assert.deepEqual(spreadOrder([], 4), []);
  const firsts = Array.from({ length: 6 }, () => spreadOrder(urls, nextStartPosition())[0]);
  for (const url of urls) assert.equal(firsts.filter((first) => first === url).length, 2, url);
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
