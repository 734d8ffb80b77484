// Preloaded for every test file (bunfig.toml): stops whatever a failed test left running.

import { afterAll } from "bun:test";
import { cleanupAll } from "./helpers/cleanup.ts";

afterAll(cleanupAll);
