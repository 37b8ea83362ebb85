"""SQL checks from the configuration: a query and a config entry, no Python."""

from __future__ import annotations

from typing import Any

import fixtures
import psycopg
import pytest
from databases import FreshDatabase
from monitoring import make_config, outcome_count, run_once, value
from pydantic import ValidationError

from monitor.config.loading import describe
from monitor.config.schema import Config

EXPIRING = {
    "name": "tokens_expiring",
    "tables": ["threads_tokens"],
    "sql": """SELECT "isValid"::text AS valid, count(*) AS tokens FROM threads_tokens
              WHERE "expiresAt" BETWEEN (now() AT TIME ZONE 'UTC')
                                    AND (now() AT TIME ZONE 'UTC') + interval '150 minutes'
              GROUP BY 1""",
    "metrics": [{"name": "rollout_tokens_expiring_soon", "value": "tokens", "labels": ["valid"]}],
}


def test_sql_check_exports_each_row_as_a_labelled_gauge(fresh_db: FreshDatabase) -> None:
    """Seed tokens expire in 2h, 2h30m, 3h, ...: two within 150 minutes, both still valid."""
    fixtures.apply(fresh_db.conn(), "migration_001")
    monitor, ok = run_once(make_config(fresh_db.url, checks={"sql": [EXPIRING]}))
    assert ok
    assert value(monitor, "rollout_tokens_expiring_soon", valid="true") == 2
    assert value(monitor, "rollout_check_success", check="tokens_expiring") == 1


def test_sql_check_is_skipped_while_its_table_is_locked(fresh_db: FreshDatabase) -> None:
    fixtures.apply(fresh_db.conn(), "migration_001")
    with psycopg.connect(fresh_db.url) as holder:
        holder.execute("LOCK TABLE threads_tokens IN ACCESS EXCLUSIVE MODE")
        monitor, _ = run_once(make_config(fresh_db.url, checks={"sql": [EXPIRING]}))
    assert outcome_count(monitor, "tokens_expiring", "skipped") == 1


def test_sql_check_naming_a_missing_column_fails_with_the_reason(fresh_db: FreshDatabase) -> None:
    check = {**EXPIRING, "metrics": [{"name": "rollout_x", "value": "nope"}]}
    fixtures.apply(fresh_db.conn(), "migration_001")
    monitor, ok = run_once(make_config(fresh_db.url, checks={"sql": [check]}))
    assert not ok
    assert outcome_count(monitor, "tokens_expiring", "failure") == 1


def labelled(sql: str) -> dict[str, Any]:
    """A SQL check exporting column v labelled by column l."""
    return {
        "name": "labelled",
        "sql": sql,
        "metrics": [{"name": "my_v", "value": "v", "labels": ["l"]}],
    }


def test_a_null_label_is_the_empty_label_never_the_text_none(fresh_db: FreshDatabase) -> None:
    check = labelled("SELECT 1 AS v, NULL::text AS l UNION ALL SELECT 2, 'x'")
    monitor, ok = run_once(make_config(fresh_db.url, checks={"sql": [check]}))
    assert ok
    assert value(monitor, "my_v", l="") == 1
    assert value(monitor, "my_v", l="x") == 2
    assert value(monitor, "my_v", l="None") is None


def test_two_rows_with_the_same_labels_fail_the_check_rather_than_collapse(
    fresh_db: FreshDatabase,
) -> None:
    """Prometheus would refuse the scrape; silently keeping the last row would hide the first."""
    check = labelled("SELECT 1 AS v, 'x' AS l UNION ALL SELECT 2, 'x'")
    monitor, ok = run_once(make_config(fresh_db.url, checks={"sql": [check]}))
    assert not ok
    assert outcome_count(monitor, "labelled", "failure") == 1
    assert value(monitor, "my_v", l="x") is None


def test_sql_checks_cannot_write(fresh_db: FreshDatabase) -> None:
    check = {
        "name": "sneaky",
        "sql": "DELETE FROM users RETURNING 1 AS n",
        "metrics": [{"name": "rollout_sneaky", "value": "n"}],
    }
    monitor, ok = run_once(make_config(fresh_db.url, checks={"sql": [check]}))
    assert not ok
    assert outcome_count(monitor, "sneaky", "failure") == 1
    row = fresh_db.conn().execute("SELECT count(*) FROM users").fetchone()
    assert row == (fixtures.USERS_TOTAL,)


@pytest.mark.parametrize(
    ("check", "message"),
    [
        ({**EXPIRING, "name": "drift"}, "checks.sql: check name 'drift' is already taken"),
        (
            {**EXPIRING, "name": "Bad-Name"},
            "checks.sql.0.name: invalid check name 'Bad-Name': must match ^[a-z][a-z0-9_]*$",
        ),
        (
            {**EXPIRING, "metrics": [{"name": "1bad", "value": "tokens"}]},
            "checks.sql.0.metrics.0.name: invalid metric name '1bad': must match ^[a-zA-Z_:][a-zA-Z0-9_:]*$",
        ),
        ({**EXPIRING, "metrics": []}, "checks.sql.0.metrics: must list at least one"),
    ],
)
def test_malformed_sql_checks_are_rejected(check: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Config.model_validate({"checks": {"sql": [check]}})
    assert [describe(d, {}, None) for d in caught.value.errors()] == [message]


def test_two_sql_checks_may_not_export_the_same_metric() -> None:
    second = {**EXPIRING, "name": "again"}
    with pytest.raises(
        ValidationError, match="metric name 'rollout_tokens_expiring_soon' is already taken"
    ):
        Config.model_validate({"checks": {"sql": [EXPIRING, second]}})
