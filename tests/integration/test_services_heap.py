"""A serving process exempts what it builds to keep from the garbage collector's full scans."""

from __future__ import annotations

import gc
from pathlib import Path

from tianping.bootstrap import build_services
from tianping.config import load_settings


def test_building_the_payments_service_freezes_the_heap(sqlite_url: str, tmp_path: Path) -> None:
    services = build_services(
        load_settings(database_url=sqlite_url, data_dir=tmp_path), migrate=True, environ={}
    )
    gc.unfreeze()
    try:
        assert gc.get_freeze_count() == 0
        payments = services.payments
        # The service, its risk model and everything alive before are out of the scans now.
        assert gc.get_freeze_count() > 0
        assert services.payments is payments
    finally:
        gc.unfreeze()
        services.close()
