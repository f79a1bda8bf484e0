"""Connection-state recovery: sessions kept in Redis, missed packets replayed from the stream."""
