"""The ``socketio-redis`` command line and the demo cluster."""
