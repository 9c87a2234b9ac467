/** The discovery namespace: derived from the working directory unless given. */
import { createHash } from "node:crypto";
import { realpathSync } from "node:fs";
import { basename, resolve } from "node:path";
import { ComsError } from "../contract/errors.ts";
import { ProjectName } from "../contract/schemas.ts";

/**
 * `<basename>-<8 hex of the real path's sha256>`: readable, filesystem-safe,
 * stable for one directory and distinct for two directories with the same name.
 */
export function projectFromCwd(cwd: string = process.cwd()): string {
  let real = resolve(cwd);
  try {
    real = realpathSync(real);
  } catch {
    // A directory that vanished still gets a stable name from its path.
  }
  const slug =
    basename(real)
      .replace(/[^A-Za-z0-9._-]+/g, "-")
      .replace(/^[^A-Za-z0-9]+/, "")
      .slice(0, 100) || "root";
  const hash = createHash("sha256").update(real).digest("hex").slice(0, 8);
  return `${slug}-${hash}`;
}

/**
 * A project name given from outside, checked before it names a directory:
 * one that could step out of it (`../x`, `a/b`) is refused, so no file is
 * read from, and no token sent to a URL found, outside the projects root.
 */
export function checkedProject(name: string): string {
  const parsed = ProjectName.safeParse(name);
  if (!parsed.success) {
    throw new ComsError(
      "BAD_INPUT",
      `bad project name ${JSON.stringify(name)}: ${parsed.error.issues[0]?.message ?? "not a project name"}`,
    );
  }
  return name;
}
