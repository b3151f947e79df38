"""Salesforce record ids: 15-character case-sensitive ids and their 18-character safe form.

An id is ``<key prefix (3)><instance (2)><reserved (1)><number (9, base 62)>`` plus, for the
18-character form, a 3-character suffix encoding which of the 15 characters are upper case.
"""

from __future__ import annotations

import re

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_ID_RE = re.compile(r"^[a-zA-Z0-9]{15}(?:[A-Z0-5]{3})?$")
INSTANCE = "5g"


def suffix(id15: str) -> str:
    """Return the 3-character case-checksum suffix of a 15-character id."""
    out = []
    for chunk in range(3):
        bits = 0
        for i, ch in enumerate(id15[chunk * 5:chunk * 5 + 5]):
            if "A" <= ch <= "Z":
                bits |= 1 << i
        out.append(_SUFFIX[bits])
    return "".join(out)


def to18(value: str) -> str:
    """Return the 18-character form of a 15- or 18-character id (other strings unchanged)."""
    if len(value) == 15 and value.isalnum():
        return value + suffix(value)
    return value


def is_id(value: object) -> bool:
    return isinstance(value, str) and bool(_ID_RE.match(value))


def make_id(prefix: str, number: int) -> str:
    """Return the 18-character id number ``number`` with key prefix ``prefix``."""
    digits = []
    n = number
    for _ in range(9):
        n, r = divmod(n, 62)
        digits.append(BASE62[r])
    id15 = f"{prefix}{INSTANCE}0{''.join(reversed(digits))}"
    return id15 + suffix(id15)


class IdFactory:
    """Hand out increasing, never-reused ids per key prefix (scrambled so they look like real ids)."""

    def __init__(self, salt: int = 0) -> None:
        self._next: dict[str, int] = {}
        self._base = 62 ** 5 * (3 + salt % 7)   # ids look like 0015g00000AbCdEFGH

    def new(self, prefix: str) -> str:
        n = self._next.get(prefix, 0) + 1
        self._next[prefix] = n
        return make_id(prefix, self._base + n * 7919)

    def state(self) -> dict[str, int]:
        return dict(self._next)
