"""Benchmark: analysis accuracy and speed on labelled real MIDI files (key, melody part, refusals).

Not a test. ``CORPUS_DIR`` holds ``labels.csv`` (``file, key, melody_track``; ``file`` is
``<corpus>/<name>.mid``) and the files. Every file is analysed in three conditions:

- ``published``: the bytes as they are;
- ``no-keysig``: every key signature meta event removed (key from the notes alone);
- ``neutral-names``: every track name replaced by ``Track N`` (N = track number, 1-based) and
  instrument names removed (melody from the music alone).

The conditions are made by rewriting the bytes of the file (no mido round trip, so nothing else
changes). Reported per corpus (the first folder of ``file``) and overall:

- ``key``: exact (tonic pitch class and mode) and the MIREX weighted score (1 exact, 0.5 a perfect
  fifth above or below in the same mode, 0.3 relative, 0.2 parallel, else 0);
- ``melody``: the chosen part belongs to the labelled MIDI track (parts are per track and channel, so a
  part maps to its track's index in file order; the same index the label counts); ``none`` counts
  files where no melody part was chosen at all;
- ``refused``: valid files the engine refused (any exception from ``load_arrangement``);
- analysis time per song: ``load_arrangement`` (parse, validate, analyse: what an upload costs) p50,
  p95 and max in ms, and ``max5min``: the worst of the songs of 2 minutes or more scaled to a
  5-minute song (ms x 300 / duration), the number to hold under 100 ms;
- ``mod``: songs reported with a key change (``keys`` longer than one entry); the labelled songs
  have one key each, so these are false alarms or real modulations the labels ignore.

    .venv/bin/python bench/analysis.py CORPUS_DIR
    .venv/bin/python bench/analysis.py CORPUS_DIR --limit 150        # an even sample per corpus
    .venv/bin/python bench/analysis.py CORPUS_DIR --misses key        # list the key misses
    .venv/bin/python bench/analysis.py CORPUS_DIR --conditions published --corpus pop909

Single process on purpose (a shared machine); a full run takes a few minutes.
"""

import argparse
import csv
import statistics
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from tracks.engine import load_arrangement  # noqa: E402
from tracks.engine.notes import parse_key  # noqa: E402

CONDITIONS = ("published", "no-keysig", "neutral-names")


# --- byte-level rewriting of the conditions ----------------------------------------------------


def _vlq(value: int) -> bytes:
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def _read_vlq(data: bytes, pos: int) -> tuple[int, int]:
    value = 0
    for _ in range(4):
        byte = data[pos]
        pos += 1
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            break
    return value, pos


_DATA = {0x80: 2, 0x90: 2, 0xA0: 2, 0xB0: 2, 0xC0: 1, 0xD0: 1, 0xE0: 2}


def _rewrite_track(data: bytes, number: int, *, drop_keysig: bool, neutral_names: bool) -> bytes:
    """One MTrk body with key signatures dropped and/or names replaced; deltas stay exact."""
    out = bytearray()
    pos, carried, running = 0, 0, 0
    named = False
    while pos < len(data):
        delta, pos = _read_vlq(data, pos)
        delta += carried
        carried = 0
        start = pos
        status = data[pos]
        if status >= 0x80:
            pos += 1
            if status < 0xF0:
                running = status
        else:
            status = running
        if status < 0xF0:
            pos += _DATA[status & 0xF0]
            out += _vlq(delta) + data[start:pos]
            continue
        meta = -1
        if status == 0xFF:
            meta = data[pos]
            pos += 1
        length, pos = _read_vlq(data, pos)
        payload_start = pos
        pos += length
        if meta == 0x59 and drop_keysig:
            carried = delta
            continue
        if meta == 0x04 and neutral_names:
            carried = delta
            continue
        if meta == 0x03 and neutral_names:
            if named:
                carried = delta
                continue
            named = True
            name = f"Track {number}".encode()
            out += _vlq(delta) + bytes((0xFF, 0x03)) + _vlq(len(name)) + name
            continue
        out += _vlq(delta) + data[start:payload_start] + data[payload_start:pos]
    return bytes(out)


def make_condition(data: bytes, condition: str) -> bytes:
    if condition == "published":
        return data
    drop_keysig = condition == "no-keysig"
    neutral = condition == "neutral-names"
    header_length = int.from_bytes(data[4:8], "big")
    out = bytearray(data[: 8 + header_length])
    pos = 8 + header_length
    number = 0
    while pos + 8 <= len(data):
        chunk, length = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "big")
        body = data[pos + 8 : pos + 8 + length]
        pos += 8 + length
        if chunk == b"MTrk":
            number += 1
            body = _rewrite_track(body, number, drop_keysig=drop_keysig, neutral_names=neutral)
        out += chunk + len(body).to_bytes(4, "big") + body
    return bytes(out)


# --- scoring ------------------------------------------------------------------------------------


def key_relation(reference: str, estimate: str) -> str:
    ref_tonic, ref_mode = parse_key(reference)
    est_tonic, est_mode = parse_key(estimate)
    interval = (est_tonic - ref_tonic) % 12
    if est_mode == ref_mode:
        if interval == 0:
            return "exact"
        if interval == 7:
            return "fifth up"
        if interval == 5:
            return "fifth down"
        return "other"
    if (ref_mode == "major" and interval == 9) or (ref_mode == "minor" and interval == 3):
        return "relative"
    if interval == 0:
        return "parallel"
    return "other"


MIREX = {"exact": 1.0, "fifth up": 0.5, "fifth down": 0.5, "relative": 0.3, "parallel": 0.2, "other": 0.0}


@dataclass
class Tally:
    songs: int = 0
    refused: int = 0
    key_exact: int = 0
    key_mirex: float = 0.0
    melody_right: int = 0
    melody_none: int = 0
    modulated: int = 0
    relations: Counter[str] = field(default_factory=Counter)
    key_sources: Counter[str] = field(default_factory=Counter)
    times_ms: list[float] = field(default_factory=list)
    per_5min_ms: list[float] = field(default_factory=list)

    def row(self, label: str) -> str:
        scored = max(1, self.songs - self.refused)
        times = sorted(self.times_ms) or [0.0]
        scaled = sorted(self.per_5min_ms) or [0.0]
        p95 = times[min(len(times) - 1, int(0.95 * len(times)))]
        return (
            f"{label:<28} {self.songs:>5} {self.refused:>4} {100 * self.key_exact / scored:>6.1f}"
            f" {self.key_mirex / scored:>6.3f} {100 * self.melody_right / scored:>6.1f}"
            f" {self.melody_none:>4} {statistics.median(times):>6.1f} {p95:>6.1f} {times[-1]:>6.1f}"
            f" {scaled[-1]:>7.1f} {self.modulated:>4}"
        )


HEADER = (
    f"{'corpus / condition':<28} {'songs':>5} {'ref':>4} {'key%':>6} {'mirex':>6} {'mel%':>6}"
    f" {'none':>4} {'p50ms':>6} {'p95ms':>6} {'maxms':>6} {'max5min':>7} {'mod':>4}"
)


def evaluate(
    path: Path, data: bytes, key: str, melody_track: int, tally: Tally, misses: list[str], show: str
) -> None:
    tally.songs += 1
    started = time.perf_counter()
    try:
        arrangement = load_arrangement(data, max_bytes=10_000_000)
    except Exception as exc:
        tally.refused += 1
        misses.append(f"REFUSED {path}: {exc}")
        return
    elapsed = (time.perf_counter() - started) * 1000
    analysis: dict[str, Any] = arrangement.analysis
    tally.times_ms.append(elapsed)
    if float(analysis["duration_s"]) >= 120:
        tally.per_5min_ms.append(elapsed * 300 / float(analysis["duration_s"]))
    relation = key_relation(key, analysis["key"])
    tally.relations[relation] += 1
    tally.key_sources[str(analysis.get("key_source"))] += 1
    tally.modulated += len(analysis.get("keys") or []) > 1
    tally.key_exact += relation == "exact"
    tally.key_mirex += MIREX[relation]
    melody = analysis["melody_part"]
    chosen_track = None if melody is None else arrangement.parts[melody].track
    if melody is None:
        tally.melody_none += 1
    if chosen_track == melody_track:
        tally.melody_right += 1
    if show == "key" and relation != "exact":
        misses.append(
            f"{path}: label {key}, got {analysis['key']} ({relation}, {analysis.get('key_source')}, "
            f"confidence {analysis.get('key_confidence')})"
        )
    if show == "melody" and chosen_track != melody_track:
        names = [(p["index"], p["name"]) for p in analysis["parts"]]
        misses.append(
            f"{path}: label track {melody_track}, chose part {melody} (track {chosen_track}) "
            f"confidence {analysis.get('melody_confidence')} parts {names}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("corpus_dir", type=Path)
    parser.add_argument("--limit", type=int, default=0, help="an even sample of at most N files per corpus")
    parser.add_argument("--corpus", action="append", help="only this corpus (repeatable)")
    parser.add_argument("--conditions", default=",".join(CONDITIONS), help="comma-separated")
    parser.add_argument("--misses", choices=("key", "melody", "refused"), help="list the misses of one kind")
    args = parser.parse_args()

    with (args.corpus_dir / "labels.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    by_corpus: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        by_corpus[row["file"].split("/")[0]].append(row)
    if args.corpus:
        by_corpus = {name: by_corpus[name] for name in args.corpus}
    if args.limit:
        for name, items in by_corpus.items():
            step = max(1, len(items) // args.limit)
            by_corpus[name] = items[::step][: args.limit]
    conditions = [c for c in args.conditions.split(",") if c]

    tallies: dict[tuple[str, str], Tally] = defaultdict(Tally)
    misses: list[str] = []
    started = time.perf_counter()
    for corpus, items in sorted(by_corpus.items()):
        for row in items:
            path = args.corpus_dir / row["file"]
            original = path.read_bytes()
            for condition in conditions:
                data = make_condition(original, condition)
                tally = Tally()
                found: list[str] = []
                evaluate(path, data, row["key"], int(row["melody_track"]), tally, found, args.misses or "")
                misses.extend(f"[{condition}] {line}" for line in found)
                for scope in (corpus, "overall"):
                    _merge(tallies[(scope, condition)], tally)
    print(HEADER)
    for scope in [*sorted(by_corpus), "overall"]:
        for condition in conditions:
            print(tallies[(scope, condition)].row(f"{scope} / {condition}"))
    print()
    for scope in [*sorted(by_corpus), "overall"]:
        for condition in conditions:
            tally = tallies[(scope, condition)]
            relations = ", ".join(f"{k} {v}" for k, v in tally.relations.most_common())
            sources = ", ".join(f"{k} {v}" for k, v in tally.key_sources.most_common())
            print(f"{scope} / {condition}: {relations}; key_source: {sources}")
    if args.misses:
        print()
        for line in misses:
            if args.misses != "refused" or "REFUSED" in line:
                print(line)
    print(f"\n{time.perf_counter() - started:.0f} s")


def _merge(into: Tally, one: Tally) -> None:
    into.songs += one.songs
    into.refused += one.refused
    into.key_exact += one.key_exact
    into.key_mirex += one.key_mirex
    into.melody_right += one.melody_right
    into.melody_none += one.melody_none
    into.modulated += one.modulated
    into.relations.update(one.relations)
    into.key_sources.update(one.key_sources)
    into.times_ms.extend(one.times_ms)
    into.per_5min_ms.extend(one.per_5min_ms)


if __name__ == "__main__":
    main()
