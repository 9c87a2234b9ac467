/**
 * A real browser for the dashboard tests: the machine's Chromium (Debian's
 * `chromium`, which `npm test` installs: scripts/test-deps.mjs), driven headless by playwright-core
 * with a fresh profile; playwright never downloads a browser. A missing
 * Chromium is an error, not a skip, so CI cannot pass without the test.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BrowserContext, chromium } from "playwright-core";

export const CHROMIUM = process.env.PI_COMS_TEST_CHROMIUM ?? "/usr/bin/chromium";

const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export interface TestBrowser {
  context: BrowserContext;
  close(): Promise<void>;
}

export async function launchBrowser(): Promise<TestBrowser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `no Chromium at ${CHROMIUM}: npm test installs it (scripts/test-deps.mjs), or run \`apt-get install chromium\`, or set PI_COMS_TEST_CHROMIUM`,
    );
  }
  // launchPersistentContext is how playwright takes a --user-data-dir: a fresh one per run.
  const profile = mkdtempSync(join(tmpdir(), "pi-coms-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
    viewport: { width: 1600, height: 640 },
  });
  return {
    context,
    close: async () => {
      await context.close().catch(() => {});
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
