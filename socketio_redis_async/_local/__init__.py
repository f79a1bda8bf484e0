"""This server's sockets: the local view, delivery to clients, and the python-socketio host."""
