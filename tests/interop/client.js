#!/usr/bin/env node
// A real socket.io-client 4.8 (websocket transport) for the Python interop tests.
// Usage: node client.js <url> <auth-json> <nsp> [<nsp> ...]
// One Manager (one Engine.IO connection) joins every namespace with `auth`. Prints one
// JSON line per event: {"type":"connect"|"disconnect"|"event", nsp, sid?, reason?, event?, args?}.
// Exits when stdin closes, so a killed test run leaves no orphan process.
"use strict";

const { Manager } = require("socket.io-client");

const [url, authJson, ...nsps] = process.argv.slice(2);
const auth = JSON.parse(authJson || "{}");
const send = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const manager = new Manager(url, { transports: ["websocket"], reconnection: false });

for (const nsp of nsps.length ? nsps : ["/"]) {
  const socket = manager.socket(nsp, { auth });
  socket.on("connect", () => send({ type: "connect", nsp, sid: socket.id }));
  socket.on("connect_error", (err) => send({ type: "connect_error", nsp, message: err.message }));
  socket.on("disconnect", (reason) => send({ type: "disconnect", nsp, reason }));
  socket.onAny((event, ...args) => send({ type: "event", nsp, event, args }));
}
manager.on("close", (reason) => send({ type: "close", reason }));

process.stdin.resume();
process.stdin.on("end", () => process.exit(0));
