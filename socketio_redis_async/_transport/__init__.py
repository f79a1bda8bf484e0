"""Transports: the ``Transport`` protocol (``base``) and its Redis pub/sub, sharded pub/sub
and in-memory implementations, with the Redis connections under them."""
