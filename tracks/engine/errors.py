"""Exceptions raised by the render engine.

Every message is a reason a producer or performer can act on, because the service layer stores
``str(exc)`` on the render row and shows it as-is.
"""


class EngineError(Exception):
    """Base class, so callers can catch everything the engine raises on purpose."""


class InvalidArrangement(EngineError):  # noqa: N818 (name fixed by the engine contract)
    """The uploaded MIDI file cannot be used; ``str(exc)`` says why in plain words."""


class InvalidSettings(EngineError, ValueError):  # noqa: N818 (name fixed by the engine contract)
    """The requested variant settings are out of range or malformed."""


class RenderFailed(EngineError):  # noqa: N818 (name fixed by the engine contract)
    """Synthesis, mastering or encoding failed; ``str(exc)`` is a human reason."""
