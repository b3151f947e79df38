"""A batch of files loads in parts: the next part downloads while one is mapped and created, two parts' bytes at most."""

from __future__ import annotations

import hashlib
import threading

import pytest

from crm_migration.engine.pipeline import Pipeline
from crm_migration.mapping.spec import load_pair
from crm_migration.streams import MissingFile


class Source:
    """A source whose files are known bytes (record ``gone``: a 404); it notes which files were asked for."""

    download_workers = 8

    def __init__(self) -> None:
        self.asked: set[str] = set()
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)

    def blob(self, obj, record):
        with self.lock:
            self.asked.add(record["id"])
            self.changed.notify_all()
        return MissingFile(404, f"/cdn/{record['id']}") if record.get("gone") else f"file {record['id']}".encode()

    def wait_for(self, ids: set[str]) -> set[str]:
        """The files asked for once all of ``ids`` were (a stuck download fails the test, it does not hang it)."""
        with self.changed:
            assert self.changed.wait_for(lambda: ids <= self.asked, timeout=30), \
                f"never asked for while the part before was loading: {sorted(ids - self.asked)[:5]}"
            return set(self.asked)


@pytest.fixture
def attachments():
    return load_pair("link_app_to_odoo").object("attachments")


def test_the_next_part_downloads_while_one_is_loaded_and_never_the_one_after(attachments):
    source = Source()
    pipe = Pipeline("link_app_to_odoo", source, None, None)      # type: ignore[arg-type]: no Odoo, no state here
    records = [{"id": str(i), "url": f"https://cdn.example.test/{i}", "gone": i == 7} for i in range(500)]
    sizes: list[int] = []
    for n, (part, got) in enumerate(pipe._file_parts(attachments, records)):
        # this part's files, in its order, each with the sha1 of its bytes; the lost one says so
        assert [r["id"] for r in part] == [str(i) for i in range(sum(sizes), sum(sizes) + len(part))]
        for r, (data, sha1) in zip(part, got, strict=True):
            if r["gone"]:
                assert isinstance(data, MissingFile) and data.status == 404
            else:
                assert (data, sha1) == (f"file {r['id']}".encode(), hashlib.sha1(data).hexdigest())  # noqa: S324
        sizes.append(len(part))
        # while this part is loaded, the next one downloads (to the end); the one after it waits
        start = sum(sizes)
        after = {str(i) for i in range(start, len(records))}
        nxt = {r["id"] for r in records[start:start + _next_size(sizes[-1])]}
        asked = source.wait_for(nxt)
        assert not (asked & (after - nxt)), f"part {n + 2} started while part {n} was loading"
    # small first (two rounds of download_workers), each next one at most 2.5 times bigger, up to 250
    assert sizes == [16, 40, 100, 250, 94]


def _next_size(size: int) -> int:
    return min(250, -(-size * 5 // 2))


def test_a_batch_smaller_than_two_rounds_of_downloads_is_one_part_and_an_object_without_files_too(attachments):
    pipe = Pipeline("link_app_to_odoo", Source(), None, None)   # type: ignore[arg-type]
    few = [{"id": str(i), "url": f"https://cdn.example.test/{i}"} for i in range(16)]
    assert [len(p) for p, _ in pipe._file_parts(attachments, few)] == [16]
    contacts = load_pair("link_app_to_odoo").object("contacts")
    many = [{"id": str(i)} for i in range(500)]
    assert [(len(p), got) for p, got in pipe._file_parts(contacts, many)] == [(500, None)]


def test_a_download_that_fails_stops_the_batch_at_its_part(attachments):
    class Failing(Source):
        def blob(self, obj, record):
            if record["id"] == "30":                 # in the second part
                raise ConnectionError("the CDN went away")
            return super().blob(obj, record)

    source = Failing()
    pipe = Pipeline("link_app_to_odoo", source, None, None)     # type: ignore[arg-type]
    records = [{"id": str(i), "url": f"https://cdn.example.test/{i}"} for i in range(500)]
    loaded = []
    with pytest.raises(ConnectionError, match="the CDN went away"):
        for part, _got in pipe._file_parts(attachments, records):
            loaded.append(len(part))
    assert loaded == [16]                             # the first part was handed over; nothing after the failure
    assert not {str(i) for i in range(56, 500)} & source.asked      # the third part was never asked for
