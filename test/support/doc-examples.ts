/**
 * The fenced examples of README.md and docs/*.md, with the mark each carries
 * on the line before its fence:
 *
 *   <!-- example: runs -->                   run as written by test/examples-run.test.ts
 *   <!-- example: runs in test/x.test.ts --> that test (or script) runs these commands
 *   <!-- example: needs a real LLM -->       a pi session driven by a person and a model
 *   <!-- example: needs other machines -->   a LAN, which tests (loopback only) cannot have
 */
import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";

export const ROOT = resolve(import.meta.dirname, "..", "..");

/** Info strings of the examples that must carry a mark: shell and TypeScript/JavaScript. */
export const CHECKED_LANGS = new Set([
  "sh",
  "bash",
  "shell",
  "console",
  "ts",
  "typescript",
  "js",
  "javascript",
]);

export interface DocExample {
  /** Path from the repository root, with the fence's line: `docs/hub.md:14`. */
  where: string;
  lang: string;
  code: string;
  /** The text after `example:`, or undefined when the line before the fence is no mark. */
  mark: string | undefined;
}

export function docPages(): string[] {
  const docs = readdirSync(join(ROOT, "docs"))
    .filter((f) => f.endsWith(".md"))
    .map((f) => `docs/${f}`);
  return ["README.md", ...docs];
}

export function examplesIn(page: string): DocExample[] {
  const lines = readFileSync(join(ROOT, page), "utf8").split("\n");
  const found: DocExample[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)/.exec(lines[i] ?? "");
    if (!open) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !(lines[i] ?? "").startsWith("```"); i++) body.push(lines[i] ?? "");
    const before = /^<!-- example: (.+?) -->$/.exec((lines[start - 1] ?? "").trim());
    found.push({
      where: `${page}:${start + 1}`,
      lang: open[1] ?? "",
      code: body.join("\n"),
      mark: before?.[1],
    });
  }
  return found;
}

export function allExamples(): DocExample[] {
  return docPages().flatMap(examplesIn);
}
