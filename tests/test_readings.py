"""Every metric the daemon reads back from its own checks is one a real run exports."""

from __future__ import annotations

import pytest

from monitor.readings import READ_BACK


@pytest.mark.parametrize("name", READ_BACK)
def test_each_name_read_back_is_exported(exported_names: set[str], name: str) -> None:
    """A check renaming a family it exports fails here, not silently in a criterion."""
    assert name in exported_names
