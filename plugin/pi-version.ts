/**
 * Which pi versions pi-coms supports and the warning for any other. The
 * range is written in one place, the peerDependencies of package.json; the
 * running version is pi's own VERSION export (what `pi --version` prints),
 * which an extension's import of the pi package resolves to inside pi.
 */
import { readFileSync } from "node:fs";

const PI_PACKAGE = "@earendil-works/pi-coding-agent";

/** The supported pi range from package.json, e.g. ">=1.6.0 <2". */
export function supportedPiRange(): string {
  const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
    peerDependencies?: Record<string, string>;
  };
  const range = pkg.peerDependencies?.[PI_PACKAGE];
  if (!range) throw new Error(`package.json names no peerDependency on ${PI_PACKAGE}`);
  return range;
}

/** The version of the pi running this extension; undefined when it does not say (very old pi). */
export async function runningPiVersion(): Promise<string | undefined> {
  try {
    const pi = (await import("@earendil-works/pi-coding-agent")) as { VERSION?: unknown };
    return typeof pi.VERSION === "string" ? pi.VERSION : undefined;
  } catch {
    return undefined;
  }
}

type Triple = [number, number, number];

function parse(version: string): Triple | undefined {
  const m = /^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?/.exec(version.trim());
  if (!m) return undefined;
  return [Number(m[1]), Number(m[2] ?? 0), Number(m[3] ?? 0)];
}

function compare(a: Triple, b: Triple): number {
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return (a[i] as number) - (b[i] as number);
  return 0;
}

/**
 * Whether `version` lies in `range`: comparator sets (">=1.6.0 <2") joined
 * by "||", the forms package.json ranges here use. A pre-release counts as
 * its release. An unreadable range or version does not satisfy.
 */
export function satisfies(version: string, range: string): boolean {
  const v = parse(version);
  if (!v) return false;
  return range.split("||").some((set) => {
    const comparators = set.trim().split(/\s+/).filter(Boolean);
    if (comparators.length === 0) return false;
    return comparators.every((comparator) => {
      const m = /^(>=|<=|>|<|=)?(.+)$/.exec(comparator);
      const bound = m?.[2] ? parse(m[2]) : undefined;
      if (!m || !bound) return false;
      const c = compare(v, bound);
      switch (m[1]) {
        case ">=":
          return c >= 0;
        case "<=":
          return c <= 0;
        case ">":
          return c > 0;
        case "<":
          return c < 0;
        default:
          return c === 0;
      }
    });
  });
}

/** The warning for a pi outside the supported range, naming both; undefined when supported. */
export function unsupportedPiWarning(found: string | undefined, range: string): string | undefined {
  if (found !== undefined && satisfies(found, range)) return undefined;
  const which = found === undefined ? "a pi that does not report its version" : `pi ${found}`;
  return `pi-coms supports pi ${range}, but this is ${which}. Commands and tools may fail or misbehave; update pi (npm install -g ${PI_PACKAGE}).`;
}

const WARNED = Symbol.for("pi-coms.pi-version-warned");

/** Check the running pi once per process (not again on /reload) and hand any warning to `warn`. */
export async function warnIfUnsupportedPi(warn: (message: string) => void): Promise<void> {
  const holder = globalThis as unknown as Record<symbol, boolean | undefined>;
  if (holder[WARNED]) return;
  holder[WARNED] = true;
  const message = unsupportedPiWarning(await runningPiVersion(), supportedPiRange());
  if (message) warn(message);
}
