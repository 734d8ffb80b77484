// Whether a real part a test needs (a Debian package's binary) is on this machine. Without it the tests that need
// it are skipped with a line saying how to install it — unless GATEHOUSE_REQUIRE_ALL is set (CI, whose .ci/run
// installs them all), where a missing part is a failure, never a silent skip.

import { existsSync } from "node:fs";

export function installed(path: string, tests: string, debianPackage: string): boolean {
  if (existsSync(path)) return true;
  if (process.env.GATEHOUSE_REQUIRE_ALL) {
    throw new Error(`${path} is missing: .ci/run installs Debian's ${debianPackage} package`);
  }
  console.warn(`skipping ${tests} tests: ${path} not found (apt-get install ${debianPackage})`);
  return false;
}
