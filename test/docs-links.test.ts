/**
 * The README is the front door: at most 15 KB, it links every page in docs/,
 * and every relative link in it and in docs/ reaches a file and, for a
 * `#fragment`, a heading of that file (GitHub's anchor rules).
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, join, normalize } from "node:path";
import { describe, it } from "node:test";
import { docPages, ROOT } from "./support/doc-examples.ts";

/** GitHub's heading anchor: lower case, punctuation dropped, spaces to dashes. */
function anchor(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\- _]/gu, "")
    .replaceAll(" ", "-");
}

function headings(file: string): Set<string> {
  let inFence = false;
  const found = new Set<string>();
  for (const line of readFileSync(file, "utf8").split("\n")) {
    if (line.startsWith("```")) inFence = !inFence;
    else if (!inFence && /^#{1,6} /.test(line)) found.add(anchor(line.replace(/^#+ /, "")));
  }
  return found;
}

function links(page: string): string[] {
  const text = readFileSync(join(ROOT, page), "utf8").replace(/```[\s\S]*?```/g, "");
  return [...text.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1] as string).filter((l) => !/^[a-z]+:/.test(l));
}

describe("README and docs links", () => {
  it("the README is at most 15 KB and links every page in docs/", () => {
    const readme = join(ROOT, "README.md");
    assert.ok(statSync(readme).size <= 15 * 1024, `README.md is ${statSync(readme).size} bytes`);
    const linked = new Set(links("README.md").map((l) => normalize(l.split("#")[0] ?? "")));
    for (const page of docPages().filter((p) => p.startsWith("docs/")))
      assert.ok(linked.has(page), `README.md does not link ${page}`);
  });

  it("every relative link reaches its file and heading", () => {
    const broken: string[] = [];
    for (const page of docPages()) {
      for (const link of links(page)) {
        const [path = "", fragment] = link.split("#");
        const target = path === "" ? join(ROOT, page) : join(ROOT, dirname(page), path);
        if (!existsSync(target)) broken.push(`${page}: ${link} (no such file)`);
        else if (fragment && target.endsWith(".md") && !headings(target).has(fragment))
          broken.push(`${page}: ${link} (no such heading)`);
      }
    }
    assert.deepEqual(broken, []);
  });
});
