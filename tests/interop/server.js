#!/usr/bin/env node
// Node.js Socket.IO 4.8 + @socket.io/redis-adapter 8.3 (classic, or sharded with --sharded)
// or @socket.io/redis-streams-adapter 0.3 (--streams) harness for the Python interop tests.
// Protocol: JSON lines. Commands on stdin, replies and events on stdout, logs on stderr.
// See README.md in this directory.
"use strict";

const http = require("http");
const readline = require("readline");
const { Server } = require("socket.io");
const { createAdapter, createShardedAdapter } = require("@socket.io/redis-adapter");
const { Emitter } = require("@socket.io/redis-emitter");
const { createClient, createCluster } = require("redis");
// --streams loads @socket.io/redis-streams-adapter and node-redis 5 ("redis-v5") in main().

// ---------------------------------------------------------------- options
const SHARDED_MODES = ["static", "dynamic", "dynamic-private"];
function parseArgs(argv) {
  const o = { port: 0, redis: "redis://127.0.0.1:6379", key: "socket.io",
    requestsTimeout: 5000, specificResponseChannel: false, namespaces: ["/", "/custom"],
    cluster: false, sharded: null, streams: false, streamOpts: {}, csr: null };
  const streamsOnly = []; // flags that need --streams
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => { if (i + 1 >= argv.length) throw new Error(`missing value for ${a}`); return argv[++i]; };
    const int = (min) => {
      const v = next();
      if (!/^[0-9]+$/.test(v) || Number(v) < min) throw new Error(`${a} needs an integer >= ${min}, got ${v}`);
      return Number(v);
    };
    // createAdapter of @socket.io/redis-streams-adapter (XADD/XREAD + pub/sub) on node-redis 5.
    if (a === "--streams") { o.streams = true; continue; }
    const streamOpt = { "--stream-name": "streamName", "--stream-count": "streamCount", "--max-len": "maxLen",
      "--read-count": "readCount", "--block-time": "blockTimeInMs" }[a];
    if (streamOpt) {
      streamsOnly.push(a);
      o.streamOpts[streamOpt] = a === "--stream-name" ? next() : int(a === "--max-len" || a === "--block-time" ? 0 : 1);
      continue;
    }
    if (a === "--sharded-pubsub") { streamsOnly.push(a); o.streamOpts.useShardedPubSub = true; continue; }
    if (a === "--only-plaintext") { streamsOnly.push(a); o.streamOpts.onlyPlaintext = true; continue; }
    // Socket.IO's connectionStateRecovery: {maxDisconnectionDuration: MS}.
    if (a === "--csr") { streamsOnly.push(a); o.csr = int(0); continue; }
    if (a === "--port") o.port = Number(next());
    else if (a === "--redis") o.redis = next();
    else if (a === "--key") o.key = next();
    else if (a === "--requests-timeout") o.requestsTimeout = Number(next());
    else if (a === "--publish-on-specific-response-channel") o.specificResponseChannel = true;
    else if (a === "--nsp") o.namespaces.push(next());
    // --redis is one node of a Redis Cluster: node-redis's cluster client (classic pub/sub).
    else if (a === "--cluster") o.cluster = true;
    // createShardedAdapter (SPUBLISH/SSUBSCRIBE) with this subscriptionMode instead of createAdapter.
    else if (a === "--sharded") {
      o.sharded = next();
      if (!SHARDED_MODES.includes(o.sharded)) throw new Error(`--sharded must be one of ${SHARDED_MODES.join(", ")}`);
    }
    else throw new Error(`unknown argument ${a}`);
  }
  if (!o.streams && streamsOnly.length) throw new Error(`${streamsOnly.join(", ")}: only with --streams`);
  if (o.streams && o.sharded) throw new Error("--streams and --sharded exclude each other");
  if (o.streams && o.specificResponseChannel) {
    throw new Error("--publish-on-specific-response-channel is an option of the classic adapter, not of --streams");
  }
  return o;
}
const opts = parseArgs(process.argv.slice(2));
const log = (...a) => console.error(`[interop-node pid=${process.pid}]`, ...a);

// ------------------------------------------------- JSON <-> JS value mapping
// Bytes travel as {"$bytes": "<base64>"}, dates (output only) as {"$date": "<ISO>"}.
function fromWire(v) {
  if (Array.isArray(v)) return v.map(fromWire);
  if (v && typeof v === "object") {
    const keys = Object.keys(v);
    if (keys.length === 1 && keys[0] === "$bytes" && typeof v.$bytes === "string") {
      return Buffer.from(v.$bytes, "base64");
    }
    const out = {};
    for (const k of keys) out[k] = fromWire(v[k]);
    return out;
  }
  return v;
}

function toWire(v) {
  if (v === undefined || typeof v === "function") return null;
  if (typeof v === "bigint") return v.toString();
  if (v === null || typeof v !== "object") return v;
  if (Buffer.isBuffer(v)) return { $bytes: v.toString("base64") };
  if (ArrayBuffer.isView(v)) return { $bytes: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("base64") };
  if (v instanceof ArrayBuffer) return { $bytes: Buffer.from(v).toString("base64") };
  if (v instanceof Date) return { $date: isNaN(v.getTime()) ? null : v.toISOString() };
  if (v instanceof Set) return [...v].map(toWire);
  if (v instanceof Map) return toWire(Object.fromEntries(v));
  if (Array.isArray(v)) return v.map(toWire);
  const out = {};
  for (const [k, x] of Object.entries(v)) {
    if (x !== undefined && typeof x !== "function") out[k] = toWire(x);
  }
  return out;
}

function send(obj) {
  try { process.stdout.write(JSON.stringify(toWire(obj)) + "\n"); } catch (err) { log("failed to write line", err); }
}

// ------------------------------------------------------------------ state
const state = {
  clientAck: "node-ack", // value sent back when a client asks for an ack
  clientAckEnabled: true,
  sseHandlers: new Map(), // `${nsp}\u0000${event}` -> {listener, hasReply, reply}
};
let io, pub, sub, emitter;

const popAck = (args) => (typeof args[args.length - 1] === "function" ? args.pop() : null);
const argsOf = (c) => fromWire(c.args || []);

function getNsp(name = "/") {
  const nsp = io._nsps.get(name);
  if (!nsp) throw new Error(`unknown namespace ${name} (use addNamespace first)`);
  return nsp;
}

function localSocket(c) {
  const s = getNsp(c.nsp).sockets.get(c.sid);
  if (!s) throw new Error(`no local socket ${c.sid} in namespace ${c.nsp || "/"}`);
  return s;
}

// fetchSockets() then act on the (Remote)Socket with id c.sid; result tells which kind it was.
async function onFound(c, act) {
  const s = await findSocket(c);
  await act(s);
  await flush(c);
  return { remote: !s.server };
}

async function findSocket(c) {
  const all = await getNsp(c.nsp).fetchSockets();
  const s = all.find((x) => x.id === c.sid);
  if (!s) throw new Error(`socket ${c.sid} not found by fetchSockets() in ${c.nsp || "/"}`);
  return s;
}

// Applies the optional to/except/local/volatile/compress fields of a command to
// io.of(nsp) or emitter.of(nsp) (the emitter has no `local` flag).
function chain(op, c) {
  if (c.to != null) op = op.to(c.to);
  if (c.except != null) op = op.except(c.except);
  if (c.local) {
    if (!("local" in op)) throw new Error("the emitter has no local flag");
    op = op.local;
  }
  if (c.volatile) op = op.volatile;
  if (c.compress != null) op = op.compress(c.compress);
  return op;
}
const operator = (c) => chain(getNsp(c.nsp), c);
const emitterOf = (c) => {
  notSharded("the emitter", "@socket.io/redis-emitter speaks the classic protocol only (socket.io-redis-emitter#127)");
  notStreams("the emitter", "@socket.io/redis-emitter speaks the classic protocol only, and the "
    + "Redis streams emitter is not published on npm");
  return emitter.of(c.nsp || "/");
};
const emitterOperator = (c) => chain(emitterOf(c), c);

const describeSocket = (s) => ({ id: s.id, handshake: s.handshake, rooms: [...s.rooms], data: s.data });
const sortRooms = (rooms) => [...rooms].sort((a, b) => (String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0));
// Fire-and-forget operations (PUBLISH) reply only after a marker published
// afterwards on the same pub connection came back on our sub connection: Redis
// delivers in order, so by then this process has handled its own message
// (Node applies its own socketsJoin/Leave/disconnectSockets only on that echo).
const SYNC_CHANNEL = `interop-harness-sync#${process.pid}#${Math.random().toString(36).slice(2)}`;
const syncWaiters = new Map();
let syncSeq = 0;
const onSyncMarker = (msg) => { const w = syncWaiters.get(String(msg)); if (w) w(); };
function flush(c = {}) {
  if (opts.sharded) return shardedFlush(c);
  if (opts.streams) return streamsFlush();
  const marker = String(++syncSeq);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { syncWaiters.delete(marker); reject(new Error("sync marker timed out")); }, 5000);
    syncWaiters.set(marker, () => { clearTimeout(timer); syncWaiters.delete(marker); resolve(null); });
    pub.publish(SYNC_CHANNEL, marker).catch(reject);
  });
}

// Sharded mode: the operation went out with SPUBLISH on the channel's shard (the main
// channel K#N#, or a room channel K#N#<room>#). A marker SPUBLISHed afterwards on
// `{<that channel>}<SYNC_CHANNEL>` (a hash tag: the same slot, so the same master and,
// in node-redis, the same connection) and SSUBSCRIBEd by our sub client comes back only
// after Redis delivered the operation. Every channel the command may have used gets one.
const markerChannels = new Map(); // adapter channel -> Promise of the SSUBSCRIBE of its marker channel
function markerChannel(channel) {
  const name = `{${channel}}${SYNC_CHANNEL}`;
  if (!markerChannels.has(channel)) markerChannels.set(channel, sub.sSubscribe(name, onSyncMarker));
  return markerChannels.get(channel).then(() => name);
}
// Node's sharded adapter SSUBSCRIBEs a room channel without waiting for Redis. A SSUBSCRIBE
// of a fresh channel in the same slot (so on the same sub connection), sent afterwards and
// confirmed, means Redis has processed the adapter's SSUBSCRIBE too.
async function subscribeBarrier(channel) {
  const name = `{${channel}}${SYNC_CHANNEL}#barrier#${++syncSeq}`;
  await sub.sSubscribe(name, () => {});
  await sub.sUnsubscribe(name);
}
const roomChannel = (nsp, room) => getNsp(nsp).adapter.dynamicChannel(room);
async function syncRooms(nsp, rooms) {
  if (opts.sharded && opts.sharded !== "static") {
    await Promise.all(rooms.map((room) => subscribeBarrier(roomChannel(nsp, room))));
  }
  return null;
}

async function shardedFlush(c) {
  const adapter = getNsp(c.nsp).adapter;
  const rooms = [...[].concat(c.to ?? []), ...(c.sid != null ? [c.sid] : [])];
  const channels = [adapter.channel, ...rooms.map((r) => adapter.dynamicChannel(r))];
  await Promise.all([...new Set(channels)].map(async (channel) => {
    const name = await markerChannel(channel);
    const marker = String(++syncSeq);
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => { syncWaiters.delete(marker); reject(new Error("sync marker timed out")); }, 5000);
      syncWaiters.set(marker, () => { clearTimeout(timer); syncWaiters.delete(marker); resolve(null); });
      pub.sPublish(name, marker).catch(reject);
    });
  }));
  return null;
}

// Streams mode: the adapter publishes on `pub` only, with XADD (broadcasts, socketsJoin/Leave,
// disconnectSockets: the stream) or PUBLISH/SPUBLISH (acked broadcasts, serverSideEmit,
// fetchSockets, responses). trackPublishes() wraps those three methods of `pub`; a flush
// waits until Redis has answered every one issued so far, so each was processed by Redis
// (XREAD BLOCKed readers served, subscribers pushed to), on a cluster too. The ClusterAdapter
// applies its own socketsJoin/... after the XADD reply; the setImmediate lets that run.
const inflight = new Set();
function trackPublishes(client) {
  for (const method of ["xAdd", "publish", "sPublish"]) {
    const original = client[method];
    client[method] = function (...args) {
      const p = original.apply(this, args);
      const settled = Promise.resolve(p).then(() => {}, () => {});
      inflight.add(settled);
      settled.then(() => inflight.delete(settled));
      return p;
    };
  }
}
async function streamsFlush() {
  await Promise.all([...inflight]);
  await new Promise((resolve) => setImmediate(resolve));
  return null;
}

const ackPromise = (start) => new Promise((resolve) => start((err, value) => resolve({ error: err ? err.message : null, value })));

// --------------------------------------------------------------- namespaces
function setupNamespace(name) {
  const nsp = io.of(name);
  nsp.on("connection", (socket) => {
    socket.onAny((event, ...args) => {
      const ack = popAck(args);
      if (event === "whoami" && ack) {  // the recovery tests' view of a socket
        const rooms = [...socket.rooms].map(String).sort();
        return ack({ sid: socket.id, recovered: socket.recovered, rooms, data: socket.data ?? null });
      }
      send({ type: "clientEvent", nsp: name, sid: socket.id, event, args, withAck: !!ack });
      if (ack && state.clientAckEnabled) ack(state.clientAck);
    });
    socket.on("disconnect", (reason) => send({ type: "disconnect", nsp: name, sid: socket.id, reason }));
    // Sharded (dynamic-private): the socket-id room's SSUBSCRIBE is in Redis before the line.
    syncRooms(name, [socket.id]).then(
      () => send({ type: "connection", nsp: name, sid: socket.id, recovered: socket.recovered }),
      (err) => reportError("syncRooms", err),
    );
  });
  return nsp;
}

// Ready when this adapter's own SUBSCRIBE (request, response and uid-specific
// response channels, issued after its PSUBSCRIBE on the same connection) is
// visible in Redis: NUMSUB of the uid-specific response channel is exactly ours.
async function waitSubscribed(nsp, deadline = Date.now() + 15000) {
  if (opts.sharded) return waitShardSubscribed(nsp, deadline);
  if (opts.streams) return waitStreamsReady(nsp, deadline);
  const { requestChannel, specificResponseChannel } = nsp.adapter;
  if (opts.cluster) {
    // NUMSUB is per node on a cluster; a SUBSCRIBE confirmed on the same pub/sub
    // connection after the adapter's own means Redis has processed those.
    await sub.subscribe(`${SYNC_CHANNEL}#${nsp.name}`, () => {});
    return;
  }
  for (;;) {
    const r = await pub.sendCommand(["PUBSUB", "NUMSUB", requestChannel, specificResponseChannel]);
    if (Number(r[1]) >= 1 && Number(r[3]) >= 1) return;
    if (Date.now() > deadline) throw new Error(`subscriptions of ${nsp.name} not visible in Redis`);
    await new Promise((res) => setTimeout(res, 20));
  }
}

// Sharded: ready when PUBSUB SHARDNUMSUB counts a subscriber of the main channel K#N#
// and of our own response channel K#N#<uid>#. On a cluster it is summed over the masters,
// as the adapter's serverCount() does (lib/util.ts PUBSUB); a master that does not own a
// channel's slot answers 0, not MOVED.
async function shardNumSub(channels, sub = "SHARDNUMSUB") {
  const nodes = await masterClients();
  const replies = await Promise.all(nodes.map((n) => n.sendCommand(["PUBSUB", sub, ...channels])));
  return channels.map((_, i) => replies.reduce((sum, r) => sum + Number(r[2 * i + 1]), 0));
}
// One client per master on a cluster (node-redis 4: `.client`; 5: nodeClient(), maybe a
// promise while it connects), else [pub].
function masterClients() {
  if (!opts.cluster) return Promise.resolve([pub]);
  return Promise.all(pub.masters.map((m) => (opts.streams ? pub.nodeClient(m) : m.client)));
}
async function waitShardSubscribed(nsp, deadline) {
  const { channel, responseChannel } = nsp.adapter;
  for (;;) {
    const counts = await shardNumSub([channel, responseChannel]);
    if (counts.every((n) => n >= 1)) return;
    if (Date.now() > deadline) throw new Error(`sharded subscriptions of ${nsp.name} not visible in Redis`);
    await new Promise((res) => setTimeout(res, 20));
  }
}
const notSharded = (what, why) => {
  if (opts.sharded) throw new Error(`${what} is not available with --sharded: ${why}`);
};
const notStreams = (what, why) => {
  if (opts.streams) throw new Error(`${what} is not available with --streams: ${why}`);
};

// Streams mode. The adapter SUBSCRIBEs (SSUBSCRIBEs with --sharded-pubsub) K#N# and
// K#N#<uid># on one connection of its own, K = --key (channelPrefix); the second is ours
// alone. Its readers (one connection per stream, --stream-count of them) XREAD BLOCK from
// `$`, resolved when Redis runs the command: a reader misses every entry added before its
// first XREAD. Ready = both channels counted by PUBSUB (SHARD)NUMSUB (summed over the
// masters on a cluster) and `CLIENT LIST` has shown --stream-count connections named
// STREAMS_CLIENT_NAME (all of pub's duplicates inherit the name) blocked (flags b) in
// XREAD (cmd=xread). A reader that only sees XREAD fail (e.g. WRONGTYPE: the adapter
// retries at once, forever, without a word) never blocks, so startup fails instead.
const STREAMS_CLIENT_NAME = `interop-harness-streams-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
const blockedReaders = new Set(); // CLIENT LIST ids (per node address) seen blocked in XREAD
async function streamReaders() {
  const nodes = await masterClients();
  const lists = await Promise.all(nodes.map((n) => n.sendCommand(["CLIENT", "LIST"])));
  lists.forEach((list, node) => {
    for (const line of String(list).split("\n")) {
      const f = Object.fromEntries(line.trim().split(" ").map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]));
      if (f.name === STREAMS_CLIENT_NAME && f.cmd === "xread" && (f.flags || "").includes("b")) blockedReaders.add(`${node}/${f.id}`);
    }
  });
  return blockedReaders.size;
}
async function waitStreamsReady(nsp, deadline) {
  const prefix = opts.key;
  const channels = [`${prefix}#${nsp.name}#`, `${prefix}#${nsp.name}#${nsp.adapter.uid}#`];
  const streamCount = opts.streamOpts.streamCount ?? 1;
  for (;;) {
    const [counts, readers] = await Promise.all([
      shardNumSub(channels, opts.streamOpts.useShardedPubSub ? "SHARDNUMSUB" : "NUMSUB"),
      streamReaders(),
    ]);
    if (counts.every((n) => n >= 1) && readers >= streamCount) return;
    if (Date.now() > deadline) {
      throw new Error(`streams adapter of ${nsp.name} not ready: NUMSUB ${counts}, ${readers}/${streamCount} readers seen blocked in XREAD`);
    }
    await new Promise((res) => setTimeout(res, 20));
  }
}

// ----------------------------------------------------------------- commands
const commands = {
  ping: async () => "pong",
  uid: async (c) => getNsp(c.nsp).adapter.uid,
  addNamespace: async (c) => {
    const nsp = io._nsps.get(c.nsp) || setupNamespace(c.nsp);
    await waitSubscribed(nsp);
    return nsp.adapter.uid;
  },

  emit: async (c) => { operator(c).emit(c.event, ...argsOf(c)); return flush(c); },
  emitWithAck: async (c) => {
    const r = await ackPromise((cb) => operator(c).timeout(c.timeout ?? 5000).emit(c.event, ...argsOf(c), cb));
    return { error: r.error, responses: r.value };
  },
  socketEmit: async (c) => { localSocket(c).emit(c.event, ...argsOf(c)); return null; },
  socketEmitWithAck: async (c) => {
    const s = localSocket(c);
    const r = await ackPromise((cb) => s.timeout(c.timeout ?? 5000).emit(c.event, ...argsOf(c), cb));
    return { error: r.error, response: r.value };
  },

  socketsJoin: async (c) => { operator(c).socketsJoin(c.rooms); return flush(); },
  socketsLeave: async (c) => { operator(c).socketsLeave(c.rooms); return flush(); },
  disconnectSockets: async (c) => { operator(c).disconnectSockets(!!c.close); return flush(); },
  fetchSockets: async (c) => {
    const op = c.timeout != null ? operator(c).timeout(c.timeout) : operator(c);
    return (await op.fetchSockets()).map(describeSocket);
  },

  remoteSocketEmit: (c) => onFound(c, (s) => s.emit(c.event, ...argsOf(c))),
  remoteSocketEmitWithAck: async (c) => {
    const s = await findSocket(c);
    const r = await ackPromise((cb) => s.timeout(c.timeout ?? 5000).emit(c.event, ...argsOf(c), cb));
    return { error: r.error, response: r.value, remote: !s.server };
  },
  remoteSocketJoin: (c) => onFound(c, (s) => s.join(c.room)),
  remoteSocketLeave: (c) => onFound(c, (s) => s.leave(c.room)),
  remoteSocketDisconnect: (c) => onFound(c, (s) => s.disconnect(!!c.close)),

  allRooms: async (c) => {
    notSharded("allRooms", "Node's ClusterAdapter has no allRooms()");
    notStreams("allRooms", "Node's ClusterAdapter has no allRooms()");
    return sortRooms(await getNsp(c.nsp).adapter.allRooms());
  },
  serverCount: async (c) => Number(await getNsp(c.nsp).adapter.serverCount()),

  serverSideEmit: async (c) => { getNsp(c.nsp).serverSideEmit(c.event, ...argsOf(c)); return flush(); },
  serverSideEmitWithAck: (c) => new Promise((resolve) => {
    // The adapter's requestsTimeout applies; `timeout` is only an extra harness-side guard.
    const guard = c.timeout ? setTimeout(() => resolve({ error: `harness timeout after ${c.timeout} ms`, responses: null }), c.timeout) : null;
    const done = (r) => { clearTimeout(guard); resolve(r); };
    getNsp(c.nsp).serverSideEmitWithAck(c.event, ...argsOf(c)).then(
      (responses) => done({ error: null, responses }),
      (err) => done({ error: err.message, responses: err.responses ?? null }),
    );
  }),
  onServerSideEmit: async (c) => {
    const name = c.nsp || "/";
    const key = `${name}\u0000${c.event}`;
    let h = state.sseHandlers.get(key);
    if (!h) {
      h = {};
      h.listener = (...args) => {
        const ack = popAck(args);
        send({ type: "serverSideEvent", nsp: name, event: c.event, args, withAck: !!ack });
        if (ack && h.hasReply) ack(h.reply);
      };
      getNsp(name).on(c.event, h.listener);
      state.sseHandlers.set(key, h);
    }
    h.hasReply = Object.prototype.hasOwnProperty.call(c, "reply");
    h.reply = fromWire(c.reply);
    return null;
  },
  offServerSideEmit: async (c) => {
    const key = `${c.nsp || "/"}\u0000${c.event}`;
    const h = state.sseHandlers.get(key);
    if (h) getNsp(c.nsp).off(c.event, h.listener);
    state.sseHandlers.delete(key);
    return null;
  },

  setClientAck: async (c) => {
    state.clientAckEnabled = !c.noAck;
    state.clientAck = fromWire(c.value);
    return null;
  },
  setData: async (c) => { localSocket(c).data = fromWire(c.data); return null; },
  join: async (c) => { await localSocket(c).join(c.room); return syncRooms(c.nsp, [c.room]); },
  // Sharded: wait until the SSUBSCRIBEs of these rooms' channels, if the adapter sent any,
  // are processed by Redis (e.g. after a remote socketsJoin put a local socket in a room).
  syncRooms: (c) => syncRooms(c.nsp, [].concat(c.rooms)),
  // Sharded: PUBSUB SHARDNUMSUB of each room's channel K#N#<room>#, summed over the masters.
  roomSubscribers: async (c) => {
    notStreams("roomSubscribers", "the streams adapter has no room channels");
    return shardNumSub([].concat(c.rooms).map((room) => roomChannel(c.nsp, room)));
  },
  leave: async (c) => { await localSocket(c).leave(c.room); return null; },
  localSockets: async (c) => [...getNsp(c.nsp).sockets.values()].map((s) => ({ id: s.id, rooms: [...s.rooms] })),

  "emitter.emit": async (c) => { emitterOperator(c).emit(c.event, ...argsOf(c)); return flush(); },
  "emitter.socketsJoin": async (c) => { emitterOperator(c).socketsJoin(c.rooms); return flush(); },
  "emitter.socketsLeave": async (c) => { emitterOperator(c).socketsLeave(c.rooms); return flush(); },
  "emitter.disconnectSockets": async (c) => { emitterOperator(c).disconnectSockets(!!c.close); return flush(); },
  "emitter.serverSideEmit": async (c) => { emitterOf(c).serverSideEmit(c.event, ...argsOf(c)); return flush(); },

  exit: async () => { setImmediate(() => shutdown(0)); return null; },
};

async function handleLine(line) {
  if (!line.trim()) return;
  let c;
  try {
    c = JSON.parse(line);
  } catch (err) {
    return send({ type: "reply", id: null, ok: false, error: `invalid JSON: ${err.message}` });
  }
  const id = c && c.id !== undefined ? c.id : null;
  try {
    const fn = Object.prototype.hasOwnProperty.call(commands, c.cmd) ? commands[c.cmd] : null;
    if (!fn) throw new Error(`unknown command ${JSON.stringify(c.cmd)}`);
    const result = await fn(c);
    send({ type: "reply", id, ok: true, result: result === undefined ? null : result });
  } catch (err) {
    send({ type: "reply", id, ok: false, error: err && err.message ? err.message : String(err) });
  }
}

// ---------------------------------------------------------------- lifecycle
let closing = false;
async function shutdown(code) {
  if (closing) return;
  closing = true;
  setTimeout(() => process.exit(code), 3000).unref();
  await (io ? io.close() : null)?.catch((err) => log("io.close failed", err));
  for (const client of [sub, pub]) {
    // node-redis 5 (--streams) deprecates quit() for close().
    const quit = (cl) => (typeof cl.close === "function" ? cl.close() : cl.quit());
    if (client && client.isOpen) await quit(client).catch((err) => log("redis quit failed", err.message));
  }
  process.exit(code);
}

function reportError(source, err) {
  log(source, err);
  if (!closing) send({ type: "error", source, message: err && err.message ? err.message : String(err) });
}
process.on("uncaughtException", (err) => reportError("uncaughtException", err));
process.on("unhandledRejection", (err) => reportError("unhandledRejection", err));
process.on("SIGTERM", () => shutdown(0));
process.on("SIGINT", () => shutdown(0));
process.stdout.on("error", () => shutdown(0)); // parent went away (EPIPE)

async function main() {
  if (opts.streams) {
    // node-redis 5 (the streams adapter's own tests use it). Every duplicate() the adapter
    // makes (its pub/sub connection and one XREAD reader per stream) keeps the client name.
    const redis5 = require("redis-v5");
    pub = opts.cluster
      ? redis5.createCluster({ rootNodes: [{ url: opts.redis }], defaults: { name: STREAMS_CLIENT_NAME } })
      : redis5.createClient({ url: opts.redis, name: STREAMS_CLIENT_NAME });
  } else {
    pub = opts.cluster ? createCluster({ rootNodes: [{ url: opts.redis }] }) : createClient({ url: opts.redis });
  }
  sub = pub.duplicate();
  pub.on("error", (err) => reportError("redis-pub", err));
  sub.on("error", (err) => reportError("redis-sub", err));
  await Promise.all([pub.connect(), sub.connect()]);
  await sub.subscribe(SYNC_CHANNEL, onSyncMarker);

  const httpServer = http.createServer((req, res) => { res.writeHead(404); res.end(); });
  // The sharded and streams adapters have no requestsTimeout option: they always wait 5 s
  // (ClusterAdapter).
  let adapter;
  if (opts.streams) {
    trackPublishes(pub);
    // Only the options given: createAdapter's Object.assign would let `undefined` win.
    adapter = require("@socket.io/redis-streams-adapter").createAdapter(pub, { channelPrefix: opts.key, ...opts.streamOpts });
  } else if (opts.sharded) {
    adapter = createShardedAdapter(pub, sub, { channelPrefix: opts.key, subscriptionMode: opts.sharded });
  } else {
    adapter = createAdapter(pub, sub, {
      key: opts.key,
      requestsTimeout: opts.requestsTimeout,
      publishOnSpecificResponseChannel: opts.specificResponseChannel,
    });
  }
  const serverOpts = { adapter };
  if (opts.csr != null) serverOpts.connectionStateRecovery = { maxDisconnectionDuration: opts.csr };
  io = new Server(httpServer, serverOpts);
  const nsps = [...new Set(opts.namespaces)].map(setupNamespace);
  // No emitter in streams mode (emitter.* commands fail): the streams emitter is not on npm.
  if (!opts.streams) emitter = new Emitter(pub, { key: opts.key });

  await new Promise((resolve, reject) => {
    httpServer.once("error", reject);
    httpServer.listen(opts.port, "127.0.0.1", resolve);
  });
  await Promise.all(nsps.map((nsp) => waitSubscribed(nsp)));
  const port = httpServer.address().port;
  const uids = Object.fromEntries(nsps.map((n) => [n.name, n.adapter.uid]));
  const mode = opts.streams ? `streams ${JSON.stringify(opts.streamOpts)}` : `sharded ${opts.sharded}`;
  log(`ready on 127.0.0.1:${port}, redis ${opts.redis}, key ${opts.key}, ${mode}, uids`, uids);
  send({ type: "ready", port, pid: process.pid, uids });
  pending.splice(0).forEach(handleLine);
  pending = null;
}

// Commands received before "ready" are queued; stdin EOF shuts down at any time.
let pending = [];
const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
rl.on("line", (line) => (pending ? pending.push(line) : handleLine(line)));
rl.on("close", () => shutdown(0)); // the test runner is gone or done

const startupTimer = setTimeout(() => { log("startup timed out"); process.exit(1); }, 20000);
main().then(() => clearTimeout(startupTimer), (err) => {
  log("startup failed:", err);
  process.exit(1);
});
