"""The shared text and id rules."""

import pytest

from backtrack.text import ID_MAX, clean_line, clean_text, clock, excerpt, parse_id


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("  Harbour Lights ", "Harbour Lights"),
        ("Song\r\nBcc: x@example.com", "Song Bcc: x@example.com"),
        ("tab\there", "tab here"),
        ("nul\x00bell\x07", "nul bell"),
        ("c1\x85control", "c1 control"),
        ("line\u2028separator", "line separator"),
        (None, ""),
    ],
)
def test_clean_line_removes_control_characters(raw, clean):
    assert clean_line(raw) == clean


def test_clean_text_keeps_line_breaks_and_drops_other_controls():
    assert clean_text(" one\r\ntwo\rthree\n\tfour\x00\x1b ") == "one\ntwo\nthree\n\tfour"


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [("12", 12), (" 7 ", 7), ("0", 0), ("9" * 30, 0), (str(ID_MAX), ID_MAX)],
)
def test_parse_id_accepts_ascii_digits(raw, parsed):
    assert parse_id(raw) == parsed


@pytest.mark.parametrize("raw", ["", "-1", "1.5", "²", "1e3", "abc", "9" * 41, None])
def test_parse_id_refuses_everything_else(raw):
    assert parse_id(raw) is None


def test_clock_and_excerpt():
    assert clock(83.6) == "1:24"
    assert clock(83.6, floor=True) == "1:23"
    assert excerpt("word " * 40, limit=20) == "word word word word…"
    assert excerpt("short\n\ntext") == "short text"
