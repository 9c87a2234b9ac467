/**
 * Driving the dashboard page in the test browser: signing in as an operator
 * does, collecting what the console says, and measuring whether any name,
 * state or time is cut off (clipped by its own box or by a box around it).
 */
import type { ConsoleMessage, Page } from "playwright-core";

/** Open the hub's page, type `secret`, and wait until the feed is live. */
export async function signInPage(page: Page, url: string, secret: string): Promise<void> {
  await page.goto(`${url}/`);
  await page.fill("#secret", secret);
  await page.click("#sign-in-button");
  await page.waitForSelector('#link[data-link="live"]');
}

/** Every console message (and uncaught page error) from now on. */
export function consoleLog(page: Page): { type: string; text: string }[] {
  const seen: { type: string; text: string }[] = [];
  page.on("console", (message: ConsoleMessage) => seen.push({ type: message.type(), text: message.text() }));
  page.on("pageerror", (error) => seen.push({ type: "pageerror", text: error.message }));
  return seen;
}

export interface Cut {
  selector: string;
  text: string;
  why: string;
}

/**
 * Elements matching `selectors` (the names, states and times) whose text
 * does not fully show: wider than their own box (scrollWidth > clientWidth,
 * an ellipsis or a clip), or reaching outside a box around them that clips
 * (overflow other than visible), or outside the page's width. Only
 * horizontal: a list that scrolls down still shows everything.
 */
export function cutOff(page: Page, selectors: string[]): Promise<Cut[]> {
  return page.evaluate((list) => {
    const cuts: { selector: string; text: string; why: string }[] = [];
    // Cards off screen skip layout (content-visibility): lay them all out to measure what scrolling
    // shows (through the CSSOM, which the page's CSP allows, unlike a <style>).
    const skipping = [...document.querySelectorAll<HTMLElement>("*")].filter(
      (node) => getComputedStyle(node).contentVisibility === "auto",
    );
    for (const node of skipping) node.style.contentVisibility = "visible";
    const pageWidth = document.documentElement.clientWidth;
    for (const selector of list) {
      for (const node of document.querySelectorAll<HTMLElement>(selector)) {
        if (node.closest("[hidden]") || node.getClientRects().length === 0) continue;
        const text = node.textContent ?? "";
        const box = node.getBoundingClientRect();
        const style = getComputedStyle(node);
        if (style.display !== "inline" && node.scrollWidth > node.clientWidth + 1) {
          cuts.push({
            selector,
            text,
            why: `scrollWidth ${node.scrollWidth} > clientWidth ${node.clientWidth}`,
          });
          continue;
        }
        if (box.left < -0.5 || box.right > pageWidth + 0.5) {
          cuts.push({ selector, text, why: `outside the page (${box.left}..${box.right} of ${pageWidth})` });
          continue;
        }
        for (let up = node.parentElement; up; up = up.parentElement) {
          const overflow = getComputedStyle(up).overflowX;
          if (overflow === "visible") continue;
          const clip = up.getBoundingClientRect();
          if (box.left < clip.left - 0.5 || box.right > clip.right + 0.5) {
            cuts.push({ selector, text, why: `clipped by ${up.tagName}.${up.className} (${overflow})` });
            break;
          }
        }
      }
    }
    for (const node of skipping) node.style.contentVisibility = "";
    return cuts;
  }, selectors);
}
