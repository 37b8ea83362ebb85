"""monitor/names.py lists every family rollout-monitor exports: a SQL check may take none."""

from __future__ import annotations

from monitor.names import BUILTIN_FAMILIES, family_of, is_builtin


def test_every_family_a_real_run_exports_is_listed(exported_names: set[str]) -> None:
    """A new metric not added to the list would let a SQL check take its name."""
    ours = {name for name in exported_names if name.startswith("rollout_")}
    assert ours
    assert {name for name in ours if family_of(name) not in BUILTIN_FAMILIES} == set()


def test_sample_names_of_a_family_are_its_own() -> None:
    assert is_builtin("rollout_auth_callback_duration_seconds_bucket")
    assert is_builtin("rollout_auth_callback_requests_total")
    assert is_builtin("rollout_db_connections")
    assert not is_builtin("rollout_tokens_expiring_within_1h")
    assert not is_builtin("rollout_db_connections_by_app")
