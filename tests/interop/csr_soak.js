#!/usr/bin/env node
// Many real socket.io-clients in one process, for the recovery soak.
// Usage: node csr_soak.js <url> <count>
// Each client reconnects by itself and records the numbers of the "n" events it gets.
// Prints {"type":"connect", i, sid, recovered} on every CONNECT. Commands on stdin, one JSON
// a line: {"cmd":"close", i} closes client i's Engine.IO connection (it reconnects);
// {"cmd":"report"} prints {"type":"report", clients: [{i, sids, recovered, numbers}]}.
// Exits when stdin closes.
"use strict";

const readline = require("readline");
const { io } = require("socket.io-client");

const [url, countText] = process.argv.slice(2);
const send = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const clients = [];
for (let i = 0; i < Number(countText); i++) {
  const socket = io(url, {
    forceNew: true,
    query: { c: String(i) }, // the proxy tags the connection with it
    transports: ["websocket"],
    reconnectionDelay: 20,
    reconnectionDelayMax: 200,
  });
  const record = { i, sids: [], recovered: [], numbers: [], offsets: 0 };
  socket.on("connect", () => {
    record.sids.push(socket.id);
    record.recovered.push(socket.recovered);
    send({ type: "connect", i, sid: socket.id, recovered: socket.recovered });
  });
  socket.on("n", (n, offset) => {
    record.numbers.push(n);
    if (typeof offset === "string") record.offsets += 1;
  });
  clients.push({ socket, record });
}

const commands = {
  close: (c) => clients[c.i].socket.io.engine && clients[c.i].socket.io.engine.close(),
  report: () => send({ type: "report", clients: clients.map((c) => c.record) }),
};
const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
rl.on("line", (line) => { const c = JSON.parse(line); commands[c.cmd](c); });
rl.on("close", () => process.exit(0));
