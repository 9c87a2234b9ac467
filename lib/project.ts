/** The discovery namespace: derived from the working directory unless given. */
import { createHash } from "node:crypto";
import { realpathSync } from "node:fs";
import { basename, resolve } from "node:path";

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
