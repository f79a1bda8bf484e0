#!/usr/bin/env node
// The Node contenders: socket.io 4.8 + the classic @socket.io/redis-adapter 8.3 on
// node-redis 4.7 (--sharded yes: its createShardedAdapter; --streams yes: instead
// @socket.io/redis-streams-adapter 0.3.1 on node-redis 5, stream --stream), answering the same commands as benchmarks/servers.py (blast, join,
// requests) in the same JSON-lines protocol on stdin/stdout (see benchmarks/children.py).
// Uses the packages installed in tests/interop/node_modules (npm ci --prefix tests/interop).
//
//   node benchmarks/node_bench.js --redis redis://127.0.0.1:6379/0 --key bench
//   node benchmarks/node_bench.js --redis redis://127.0.0.1:6379/0 --key bench --streams yes --stream S
//
// Prints {"ready": true, "port": P, "pid": N} on stdout once the adapter's subscriptions
// are visible in Redis, then answers {"id", "cmd", ...args} lines; exits on SIGTERM/SIGINT
// and when stdin closes.
"use strict";

const http = require("http");
const readline = require("readline");
const path = require("path");
const { createRequire } = require("module");

const interop = createRequire(path.join(__dirname, "..", "tests", "interop", "package.json"));
const { Server } = interop("socket.io");
const { createAdapter, createShardedAdapter } = interop("@socket.io/redis-adapter");
const { createClient, createCluster } = interop("redis");

const EVENT = "m";
const TEXT = "benchmark payload 0123456789";

function parseArgs(argv) {
  const o = {
    redis: "redis://127.0.0.1:6379", key: "socket.io", sharded: "no", cluster: "no", streams: "no", stream: "socket.io",
  };
  for (let i = 0; i < argv.length; i += 2) {
    if (argv[i] === "--redis") o.redis = argv[i + 1];
    else if (argv[i] === "--key") o.key = argv[i + 1];
    // --sharded yes: createShardedAdapter (dynamic mode); --cluster yes: a node-redis cluster client
    else if (argv[i] === "--sharded") o.sharded = argv[i + 1];
    else if (argv[i] === "--cluster") o.cluster = argv[i + 1];
    // --streams yes: @socket.io/redis-streams-adapter (XADD/XREAD + pub/sub) on node-redis 5,
    // broadcasting on the stream --stream (its channelPrefix is --key)
    else if (argv[i] === "--streams") o.streams = argv[i + 1];
    // --csr yes: the server's connectionStateRecovery (Node's defaults) on the streams adapter
    else if (argv[i] === "--csr") o.csr = argv[i + 1];
    else if (argv[i] === "--stream") o.stream = argv[i + 1];
    else throw new Error(`unknown argument ${argv[i]}`);
  }
  return o;
}
const opts = parseArgs(process.argv.slice(2));
if (opts.streams === "yes" && (opts.sharded === "yes" || opts.cluster === "yes")) {
  throw new Error("--streams yes runs on one Redis, without --sharded or --cluster");
}
// Streams mode: every connection the adapter duplicates from `pub` (its pub/sub connection
// and its XREAD reader) keeps this name, so CLIENT LIST shows when the reader is blocked.
const CLIENT_NAME = `node-bench-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
// Wall-clock seconds with sub-millisecond precision, comparable with Python's time.time():
// performance.timeOrigin can be off from the system clock by a fraction of a millisecond,
// so the offset is taken at an edge of Date.now()'s millisecond tick instead.
function wallClockOffset() {
  performance.now(); // the first call loads perf_hooks: keep it out of the measurement
  let edge = Date.now();
  while (Date.now() === edge);
  edge = Date.now();
  while (Date.now() === edge);
  return Date.now() - performance.now();
}
const offsetMs = wallClockOffset();
const now = () => (offsetMs + performance.now()) / 1000;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const tick = () => new Promise((resolve) => setImmediate(resolve));

let io, pub, sub;

function roomList(spec) {
  const at = spec.lastIndexOf(":");
  if (at > 0 && /^\d+$/.test(spec.slice(at + 1))) {
    const prefix = spec.slice(0, at);
    return Array.from({ length: Number(spec.slice(at + 1)) }, (_, i) => `${prefix}-${i}`);
  }
  return [spec];
}

// Emits are synchronous in Node (node-redis pipelines the PUBLISHes, or the streams adapter's
// XADDs: ClusterAdapter.broadcast sends its XADD before its first await); yield to the event
// loop every 64 emits so that sockets get written, and end with a PING on the publishing
// connection, which Redis answers after every PUBLISH (XADD) before it.
async function blast(n, rooms, rate) {
  const start = performance.now();
  for (let seq = 0; seq < n; seq++) {
    if (rate > 0) {
      const delay = start + (seq * 1000) / rate - performance.now();
      if (delay > 0.5) await sleep(delay);
    } else if ((seq & 63) === 63) {
      await tick();
    }
    io.to(rooms[seq % rooms.length]).emit(EVENT, { i: seq, t: now(), text: TEXT });
  }
  if (typeof pub.ping === "function") await pub.ping(); // a cluster client has no PING
  return (performance.now() - start) / 1000;
}

async function requests(kind, n) {
  const durations = [];
  let answer = 0;
  for (let i = 0; i < n; i++) {
    const began = performance.now();
    if (kind === "all_rooms") answer = (await io.of("/").adapter.allRooms()).size;
    else if (kind === "fetch_sockets") answer = (await io.fetchSockets()).length;
    else throw new Error(`unknown request kind ${kind}`);
    durations.push((performance.now() - began) / 1000);
  }
  return { durations, answer };
}

async function join(prefix, start, count) {
  const rooms = Array.from({ length: count }, (_, i) => `${prefix}-${start + i}`);
  for (const socket of io.of("/").sockets.values()) socket.join(rooms);
  return { rooms: io.of("/").adapter.rooms.size };
}

const commands = {
  blast: async ({ n, room, rate }) => ({ elapsed: await blast(n, roomList(room || "bench"), rate || 0) }),
  join: ({ prefix, start, count }) => join(prefix, start, count),
  requests: ({ kind, n }) => requests(kind, n),
};

async function handle(line) {
  const { id, cmd, ...args } = JSON.parse(line);
  let reply;
  try {
    if (!(cmd in commands)) throw new Error(`unknown command ${cmd}`);
    reply = { id, ok: true, result: await commands[cmd](args) };
  } catch (err) {
    reply = { id, ok: false, error: String(err && err.stack ? err.stack : err) };
  }
  process.stdout.write(JSON.stringify(reply) + "\n");
}

// Streams mode: ready when the adapter's public and private channels (K#/# and K#/#<uid>#)
// are subscribed and CLIENT LIST shows its reader blocked in XREAD: the reader starts at
// `$` when Redis runs its first XREAD, and would miss every entry added before that.
async function streamsReady(adapter) {
  const channels = [`${opts.key}#/#`, `${opts.key}#/#${adapter.uid}#`];
  const r = await pub.sendCommand(["PUBSUB", "NUMSUB", ...channels]);
  if (Number(r[1]) < 1 || Number(r[3]) < 1) return false;
  const list = String(await pub.sendCommand(["CLIENT", "LIST"]));
  return list.split("\n").some((line) => {
    const f = Object.fromEntries(line.trim().split(" ").map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]));
    return f.name === CLIENT_NAME && f.cmd === "xread" && (f.flags || "").includes("b");
  });
}

async function waitSubscribed(adapter, deadline = Date.now() + 15000) {
  for (;;) {
    if (opts.streams === "yes") {
      if (await streamsReady(adapter)) return;
      if (Date.now() > deadline) throw new Error("streams adapter: subscriptions or XREAD reader not visible in Redis");
      await sleep(20);
      continue;
    }
    if (opts.sharded === "yes") {
      // The sharded adapter has no request channel: it counts servers on its main channel.
      if ((await adapter.serverCount()) >= 1) return;
      if (Date.now() > deadline) throw new Error("adapter subscriptions not visible in Redis");
      await sleep(20);
      continue;
    }
    const r = await pub.sendCommand(["PUBSUB", "NUMSUB", adapter.requestChannel, adapter.specificResponseChannel]);
    if (Number(r[1]) >= 1 && Number(r[3]) >= 1) return;
    if (Date.now() > deadline) throw new Error("adapter subscriptions not visible in Redis");
    await sleep(20);
  }
}

let closing = false;
async function shutdown(code) {
  if (closing) return;
  closing = true;
  setTimeout(() => process.exit(code), 2000).unref();
  if (io) io.close();
  for (const client of [sub, pub]) {
    if (!client || !client.isOpen) continue;
    // node-redis 5 (--streams yes) deprecates quit() for close().
    await (typeof client.close === "function" ? client.close() : client.quit()).catch(() => {});
  }
  process.exit(code);
}
process.on("SIGTERM", () => shutdown(0));
process.on("SIGINT", () => shutdown(0));
process.stdin.on("error", () => shutdown(0));
const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
lines.on("line", (line) => void handle(line));
lines.on("close", () => shutdown(0));

async function main() {
  let adapter;
  if (opts.streams === "yes") {
    // The streams adapter takes one client and duplicates it for pub/sub and for its reader.
    pub = interop("redis-v5").createClient({ url: opts.redis, name: CLIENT_NAME });
    await pub.connect();
    const { createAdapter: createStreamsAdapter } = interop("@socket.io/redis-streams-adapter");
    // Node's defaults otherwise: maxLen 10,000, readCount 100, blockTimeInMs 5000.
    adapter = createStreamsAdapter(pub, { channelPrefix: opts.key, streamName: opts.stream });
  } else {
    pub = opts.cluster === "yes" ? createCluster({ rootNodes: [{ url: opts.redis }] }) : createClient({ url: opts.redis });
    sub = pub.duplicate();
    await Promise.all([pub.connect(), sub.connect()]);
    adapter = opts.sharded === "yes"
      ? createShardedAdapter(pub, sub, { channelPrefix: opts.key, subscriptionMode: "dynamic" })
      : createAdapter(pub, sub, { key: opts.key });
  }
  const httpServer = http.createServer();
  const recovery = opts.csr === "yes" ? { connectionStateRecovery: {} } : {};
  io = new Server(httpServer, { transports: ["websocket"], adapter, ...recovery });
  io.on("connection", (socket) => {
    const rooms = socket.handshake.auth && socket.handshake.auth.rooms;
    if (Array.isArray(rooms)) socket.join(rooms);
  });
  await new Promise((resolve, reject) => {
    httpServer.once("error", reject);
    httpServer.listen(0, "127.0.0.1", resolve);
  });
  await waitSubscribed(io.of("/").adapter);
  process.stdout.write(JSON.stringify({ ready: true, port: httpServer.address().port, pid: process.pid }) + "\n");
}

main().catch((err) => {
  console.error("node_bench failed:", err);
  process.exit(1);
});
