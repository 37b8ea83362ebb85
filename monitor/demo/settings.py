"""The demo's settings: how big, how busy and how fast it is (its command line's defaults)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from monitor.assets import folder


@dataclass(frozen=True)
class DemoSettings:
    """How big, how busy and how fast the demo is."""

    users: int = 5000
    logins_per_second: float = 5.0
    migrate_after: float | None = 60.0
    check_interval: float = 5.0
    probe_interval: float = 2.0
    scrape_interval: float = 5.0
    prometheus: bool = True
    alerts_dir: Path = field(
        default_factory=lambda: folder("alerts")
    )  # the installed package's rules
