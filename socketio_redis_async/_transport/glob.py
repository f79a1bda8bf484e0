"""Redis' glob rules (``stringmatchlen``), for the in-memory transport's patterns."""

from __future__ import annotations

import functools
import re


def glob_match(pattern: bytes, string: bytes) -> bool:
    """Whether ``string`` matches ``pattern`` by Redis' glob rules (``stringmatchlen``):
    ``*``, ``?``, ``[abc]``, ``[a-z]``, ``[^...]``, ``\\`` escaping the next byte; quirks
    included: ``[z-a]`` is ``[a-z]``, ``[`` left open ends with the pattern, ``[]`` matches
    nothing, ``[^]`` any byte, and no pattern but ``""`` matches ``""``."""
    return _regex(pattern).fullmatch(string) is not None if string else not pattern


@functools.lru_cache(maxsize=4096)
def _regex(pattern: bytes) -> re.Pattern[bytes]:
    out, p, end = [], 0, len(pattern)
    while p < end:
        c = pattern[p : p + 1]
        if c == b"[":
            p += 1
            negate = pattern[p : p + 1] == b"^"
            p += negate
            members = []
            while p < end and pattern[p] != ord("]"):
                if pattern[p] != ord("\\") and p + 2 < end and pattern[p + 1] == ord("-"):
                    members.append(b"\\x%02x-\\x%02x" % tuple(sorted(pattern[p : p + 3 : 2])))
                    p += 2
                else:  # a byte, or one escaped by a backslash
                    p += pattern[p] == ord("\\") and p + 1 < end
                    members.append(b"\\x%02x" % pattern[p])
                p += 1
            klass = b"[%s%s]" % (b"^" if negate else b"", b"".join(members))
            out.append(klass if members else b"." if negate else b"(?!)")
        elif c in (b"*", b"?"):
            out.append(b".*" if c == b"*" else b".")
        else:  # a byte, or one escaped by a backslash
            p += c == b"\\" and p + 1 < end
            out.append(b"\\x%02x" % pattern[p])
        p += 1
    return re.compile(b"".join(out), re.DOTALL)
