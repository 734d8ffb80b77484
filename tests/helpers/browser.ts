// Headless Chromium (Debian's package) driven by playwright-core, for every HTML page Gatehouse serves. When the
// browser is missing the tests that need it are skipped — unless GATEHOUSE_REQUIRE_ALL is set (CI), then they fail.

import { type Browser, chromium } from "playwright-core";
import { installed } from "./installed.ts";

export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

export function browserAvailable(): boolean {
  return installed(CHROMIUM, "browser", "chromium");
}

export function launch(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}
