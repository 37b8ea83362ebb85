"""Values as error messages show them: short, whatever the value (never its whole repr)."""

from __future__ import annotations

SHOWN_MAX = 40  # characters of a value an error message shows


def shown(value: object) -> str:
    """A short description of a value: its repr cut at SHOWN_MAX characters for a scalar, its
    kind and size for a container (whose repr could be huge: an alias bomb, a deep list)."""
    if isinstance(value, dict):
        return f"a mapping of {len(value)} keys"
    if isinstance(value, list | tuple | set | frozenset):
        return f"a list of {len(value)} items"
    if isinstance(value, str | bytes) and len(value) > SHOWN_MAX:
        return repr(value[:SHOWN_MAX]) + f"… ({len(value)} characters)"
    if isinstance(value, int) and value.bit_length() > 128:  # its repr could be refused
        return f"an integer of {value.bit_length()} bits"
    if isinstance(value, str | bytes | int | float | bool) or value is None:
        text = repr(value)
        return text if len(text) <= SHOWN_MAX else text[:SHOWN_MAX] + "…"
    return type(value).__name__
