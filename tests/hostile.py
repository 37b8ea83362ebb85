"""Hostile configuration text shared by the tests (an alias bomb)."""

from __future__ import annotations


def yaml(text: str) -> bytes:
    return text.encode()


ALIAS_BOMB = (
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]\n"
        for i in range(8)
    )
    + "database: *i\n"
)
