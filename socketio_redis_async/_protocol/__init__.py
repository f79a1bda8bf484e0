"""The protocol layer: Node's Redis adapter protocol, sans I/O.

``rooms`` (what a room is), ``channels`` (channel names), ``codec`` (bytes and plain
data), ``messages`` (broadcasts and requests: types, builders, validation) and
``answers`` (answers: builders, compression, size limit, reading). Nothing here does
I/O or imports Redis or python-socketio; the adapter, both emitters and the CLI build
and read every message through these modules.
"""
