"""Benchmark: section boundary detection, precision and recall at +-1 bar (not a test).

No public MIDI set on this machine carries human phrase annotations (the labelled analysis corpus has key and
melody labels only; POP909's phrase files are not part of it), so the truth here is the section
markers of files that have them: the demo songs of ``tracks/demo`` (generated, pop and ballad, several
lengths and seeds) and any ``--midi-dir`` files with two or more markers. Each file is analysed with its
markers hidden, and the detected boundaries are scored against the markers' bars:

- precision: detected boundaries within 1 bar of a marker boundary (one-to-one) / detected;
- recall: marker boundaries found within 1 bar / marker boundaries;
- labels: pairs of sections that the markers call the same (``Verse 1``/``Verse 2``: the name without
  its number) and the detection labels alike, or different and labelled differently, over all pairs of
  correctly found sections.

    .venv/bin/python bench/sections.py
    .venv/bin/python bench/sections.py --songs 12 --midi-dir tests/data/midi
"""

import argparse
import re
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tracks.demo.compose import compose_song
from tracks.engine import load_arrangement
from tracks.engine.sections import bar_grid, boundary_scores, detect_sections, marker_sections


def _base(name: str) -> str:
    return re.sub(r"\s*\d+$", "", name).casefold()


def score(data: bytes, label: str) -> tuple[int, int, int, int, int] | None:
    arrangement = load_arrangement(data)
    grid = bar_grid(arrangement)
    truth = marker_sections(arrangement, grid)
    if truth is None:
        return None
    hidden = replace(arrangement, raw=replace(arrangement.raw, markers=[], cue_points=[]))
    started = time.perf_counter()
    found = detect_sections(hidden, grid)
    elapsed = (time.perf_counter() - started) * 1000
    hits, n_found, n_true = boundary_scores([bar for _, bar in found], [bar for _, bar in truth])
    # Label agreement on the sections whose both ends were found exactly.
    truth_spans = {bar: _base(name) for name, bar in truth}
    found_spans = {bar: name for name, bar in found}
    common = sorted(set(truth_spans) & set(found_spans))
    agree = pairs = 0
    for i, a in enumerate(common):
        for b in common[i + 1 :]:
            pairs += 1
            agree += (truth_spans[a] == truth_spans[b]) == (found_spans[a] == found_spans[b])
    print(
        f"{label:28} bars {grid.count:4}  truth {n_true:3}  found {n_found:3}  hits {hits:3}  "
        f"{elapsed:6.1f} ms  {' '.join(f'{n}@{b}' for n, b in found)}"
    )
    return hits, n_found, n_true, agree, pairs


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--songs", type=int, default=8, help="demo songs per style")
    parser.add_argument("--midi-dir", default=None, help="also score the files here that carry markers")
    args = parser.parse_args()
    totals = [0, 0, 0, 0, 0]
    cases = [
        (
            f"demo {style} {minutes:g}min seed {seed}",
            compose_song(style=style, minutes=minutes, parts=parts, seed=seed),
        )
        for style, parts in (("pop", 8), ("ballad", 6))
        for seed in range(args.songs)
        for minutes in (2.0 + seed % 3,)
    ]
    if args.midi_dir:
        cases += [(path.name, path.read_bytes()) for path in sorted(Path(args.midi_dir).glob("*.mid"))]
    scored = 0
    for label, data in cases:
        result = score(data, label)
        if result is None:
            print(f"{label:28} no section markers: not scored")
            continue
        scored += 1
        totals = [total + value for total, value in zip(totals, result, strict=True)]
    hits, found, true, agree, pairs = totals
    print(
        f"\n{scored} files: boundary precision {hits / max(found, 1):.3f}, recall {hits / max(true, 1):.3f} "
        f"(+-1 bar; {hits} of {found} found, {true} marked); labels agree on {agree}/{pairs} section pairs"
    )


if __name__ == "__main__":
    main()
