"""Demo material for Backtrack: generated songs for the demo data, tests and benchmarks.

Not part of the render engine (nothing in ``tracks.engine`` needs it) and, like the engine, pure
Python with no Django, so benchmarks and engine tests can use it without settings.
"""

from .compose import compose_song

__all__ = ["compose_song"]
