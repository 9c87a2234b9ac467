/** Background work (pings, refreshes, re-watches) must never become an unhandled rejection. */
export function ignore(): void {}
