"""Small text and number rules every app shares: one home each, imported by forms, serializers,
services and templates alike.
"""

from __future__ import annotations

import re
import unicodedata

# Control characters (C0, DEL, C1) and the Unicode line/paragraph separators. In a one-line field
# (a title, a display name) any of them can break an email header or a log line, so they go.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# In multi-line text (a comment, a description) newlines and tabs are content; the rest is not.
_CONTROL_EXCEPT_LINES = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")
# Ids from URLs and forms: ASCII digits only (``str.isdigit`` also accepts "²", which ``int`` refuses),
# and a bounded number of them, so parsing costs nothing.
_ID = re.compile(r"[0-9]{1,40}")
ID_MAX = 2**63 - 1


def clean_line(value: str | None) -> str:
    """One line of text: control characters become spaces, runs of spaces one, ends stripped."""
    text = unicodedata.normalize("NFC", value or "")
    return " ".join(_CONTROL.sub(" ", text).split())


def clean_text(value: str | None) -> str:
    """Multi-line text: line breaks kept (as ``\\n``), other control characters removed, stripped."""
    text = unicodedata.normalize("NFC", value or "").replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL_EXCEPT_LINES.sub("", text).strip()


def has_control_characters(value: str) -> bool:
    return bool(_CONTROL.search(value))


def parse_id(value: object) -> int | None:
    """A database id from a query string or form value; None when it is not a number.

    A well-formed id too large for a 64-bit database column is 0, which matches no row: it is
    "not found", like any other id that does not exist, and never reaches the database as an overflow.
    """
    text = str(value).strip() if value is not None else ""
    if not _ID.fullmatch(text):
        return None
    number = int(text)
    return number if number <= ID_MAX else 0


def clock(seconds: float, *, floor: bool = False) -> str:
    """``1:23``; ``floor`` matches what an audio player shows for the same moment."""
    whole = int(seconds) if floor else round(seconds)
    return f"{whole // 60}:{whole % 60:02d}"


def excerpt(text: str, limit: int = 80) -> str:
    """The start of a text on one line, cut at a word with an ellipsis when it is long."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    return flat[:limit].rsplit(" ", 1)[0].rstrip(",.;:") + "…"
