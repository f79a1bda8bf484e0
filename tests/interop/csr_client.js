#!/usr/bin/env node
// A real socket.io-client 4.8 that reconnects by itself, for the recovery tests.
// Usage: node csr_client.js <url> <nsp>
// Prints one JSON line per event: {"type":"connect", sid, recovered} | {"type":"disconnect",
// reason} | {"type":"event", event, args} (args as the listener sees them: with recovery the
// offset is the last one) | {"type":"reply", id, value}. Commands on stdin, one JSON a line:
// {"cmd":"close"} closes the Engine.IO connection (the client reconnects by itself),
// {"cmd":"disconnect"} leaves the namespace, {"cmd":"connect"} joins it again,
// {"cmd":"call", id, event, args} emits with an ack and prints the reply.
// Exits when stdin closes, so a killed test run leaves no orphan process.
"use strict";

const readline = require("readline");
const { io } = require("socket.io-client");

const [url, nsp = "/"] = process.argv.slice(2);
const send = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const socket = io(url + (nsp === "/" ? "" : nsp), {
  transports: ["websocket"],
  reconnectionDelay: 20,
  reconnectionDelayMax: 100,
  randomizationFactor: 0,
});
socket.on("connect", () => send({ type: "connect", sid: socket.id, recovered: socket.recovered }));
socket.on("connect_error", (err) => send({ type: "connect_error", message: err.message }));
socket.on("disconnect", (reason) => send({ type: "disconnect", reason }));
socket.onAny((event, ...args) => send({ type: "event", event, args }));

const commands = {
  close: () => socket.io.engine.close(),
  disconnect: () => socket.disconnect(),
  connect: () => socket.connect(),
  call: (c) => socket.timeout(5000).emit(c.event, ...(c.args || []), (err, value) =>
    send({ type: "reply", id: c.id, error: err ? err.message : null, value })),
};
const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
rl.on("line", (line) => { const c = JSON.parse(line); commands[c.cmd](c); });
rl.on("close", () => process.exit(0));
