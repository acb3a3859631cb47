// Starts the pinned PeerJS server (npm `peer`, see package.json) on a
// loopback port for the benchmarks.
//
// usage: node tests/bench/peerjs-server.mjs PORT [CONCURRENT_LIMIT]
//
// Prints "peerjs listening PORT VERSION" once it accepts connections.
// concurrent_limit (PeerJS default 5000) is raised so the idle-session
// benchmark can open as many sessions as it does against DWRTC.

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { PeerServer } from "peer";

// peer's "exports" hide package.json; read it beside its entry point.
const entry = createRequire(import.meta.url).resolve("peer");
const version = JSON.parse(
  readFileSync(join(dirname(entry), "..", "package.json"), "utf8"),
).version;
const port = Number(process.argv[2] || 9000);
const limit = Number(process.argv[3] || 100000);

PeerServer(
  {
    host: "127.0.0.1",
    port,
    path: "/",
    concurrent_limit: limit,
  },
  () => {
    console.log(`peerjs listening ${port} ${version}`);
  },
);

process.on("SIGTERM", () => process.exit(0));
process.on("SIGINT", () => process.exit(0));
