"""Read windows: what a run reads of each object (pure rules; the state DB side is in tests/integration/state)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from crm_migration.engine.windows import deletion_warning, resolve
from crm_migration.streams.apto_source import AptoSource
from crm_migration.streams.link_app_source import LinkAppSource

AT = datetime(2026, 12, 6, 12, 7, tzinfo=UTC)
DS, DE = datetime(2026, 12, 6, 11, 45, tzinfo=UTC), datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("kind", "mark", "want"), [
    ("full", None, (None, AT)),                                    # everything up to the extraction's start
    ("sample", DS, (None, AT)),
    ("delta", None, (DS, DE)),                                     # no watermark: the interval only
    ("delta", DS - timedelta(hours=3), (DS - timedelta(hours=3), DE)),   # behind: caught up from the watermark
    ("delta", DE + timedelta(hours=1), (DS, DE)),                  # ahead (a late retry): never later than DS
    ("sync_now", DS - timedelta(days=2), (DS - timedelta(days=2), AT)),
    ("sync_now", None, (DS, AT)),
    ("sync_now", AT + timedelta(minutes=30), (AT + timedelta(minutes=30),) * 2),   # a mark past now: empty window
])
def test_a_window_reads_from_the_watermark_never_later_than_its_interval(kind, mark, want):
    assert resolve(kind, watermark=mark, interval_start=DS, interval_end=DE, at=AT) == want


def test_a_sync_now_without_interval_or_watermark_reads_everything_and_a_delta_needs_its_interval():
    assert resolve("sync_now", watermark=None, interval_start=None, interval_end=None, at=AT) == (None, AT)
    with pytest.raises(ValueError, match="data_interval_start"):
        resolve("delta", watermark=None, interval_start=None, interval_end=None, at=AT)
    with pytest.raises(ValueError, match="unknown window kind"):
        resolve("weekly", watermark=None, interval_start=DS, interval_end=DE, at=AT)


def test_deletions_older_than_the_source_keeps_them_are_warned_about():
    link, apto = LinkAppSource(None), AptoSource(None)
    assert deletion_warning(link, "contacts", AT - timedelta(days=29), AT) is None
    text = deletion_warning(link, "contacts", AT - timedelta(days=31), AT)
    assert text.startswith(f"contacts: deletions are read from {(AT - timedelta(days=31)).isoformat()} (31 days ago)")
    assert "the Link app tenant keeps deletions 30 days only" in text
    assert f"deleted before {(AT - timedelta(days=30)).isoformat()} cannot be seen" in text
    assert "from the beginning" in deletion_warning(link, "deals", None, AT)
    assert deletion_warning(apto, "Contact", AT - timedelta(days=14), AT) is None
    assert "recycle bin 15 days only" in deletion_warning(apto, "Contact", AT - timedelta(days=16), AT)
    assert deletion_warning(object(), "X", None, AT) is None        # a source that keeps them all
