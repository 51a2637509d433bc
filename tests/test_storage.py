from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from optimizer.errors import CampaignError
from optimizer.storage import CampaignLock, JournalStorage, replay
from optimizer.testing import StorageConformance


class TestJournalConformance(StorageConformance):
    @pytest.fixture
    def make_storage(self):
        return JournalStorage

    def tear_last_write(self, root: Path) -> None:
        with open(root / "journal.jsonl", "ab") as fh:  # the first bytes of one more event, no newline
            fh.write(b'{"v":1,"event":"lost","x":[1.5,')


def _submitted(cid: int, attempt: int = 1) -> dict:
    return {"event": "submitted", "call": cid, "attempt": attempt, "origin": "initial", "params": {"x": cid},
            "unit": [0.1 * cid], "seed": cid, "n_samples": 4}


def test_reload_and_replay(tmp_path: Path) -> None:
    j = JournalStorage(tmp_path)
    j.append(_submitted(1))
    ref = j.save_samples(1, np.ones((4, 1)))
    j.append({"event": "completed", "call": 1, "attempt": 1, "samples": ref, "metrics": {"f": 1.0}, "feasible": True})
    j.append(_submitted(2))
    j.append({"event": "failed", "call": 2, "attempt": 1, "kind": "error", "error": "boom", "final": False})
    j.append(_submitted(2, 2))
    j.append({"event": "failed", "call": 2, "attempt": 2, "kind": "error", "error": "boom", "final": True})
    j.append(_submitted(3))
    j.close()
    calls = replay(JournalStorage(tmp_path).events())
    assert calls[1].status == "completed" and calls[1].metrics == {"f": 1.0}
    assert calls[2].status == "failed" and calls[2].failures == 2 and calls[2].attempts == 2 and calls[2].error == "boom"
    assert calls[3].status == "submitted" and not calls[3].done
    np.testing.assert_array_equal(JournalStorage(tmp_path).load_samples(calls[1].samples), np.ones((4, 1)))


def test_torn_last_line_is_ignored_then_cut(tmp_path: Path) -> None:
    j = JournalStorage(tmp_path)
    j.append(_submitted(1))
    j.close()
    with open(j.path, "a") as fh:
        fh.write('{"v":1,"event":"completed","call":1,"att')  # the process died mid-write
    assert [e["event"] for e in JournalStorage(tmp_path).events()] == ["submitted"]
    j2 = JournalStorage(tmp_path)
    j2.append(_submitted(2))
    j2.close()
    lines = j.path.read_text().splitlines()
    assert len(lines) == 2 and all(json.loads(line) for line in lines)


def test_corrupt_middle_line_is_an_error(tmp_path: Path) -> None:
    j = JournalStorage(tmp_path)
    j.append(_submitted(1))
    j.close()
    with open(j.path, "a") as fh:
        fh.write("garbage\n")
    j.append(_submitted(2))
    with pytest.raises(CampaignError, match="line 2 is corrupt"):
        list(j.events())


def test_samples_written_atomically(tmp_path: Path) -> None:
    j = JournalStorage(tmp_path)
    ref = j.save_samples(12, np.zeros((3, 2), dtype=np.float32))
    assert ref == "samples/call-000012.npy"
    assert not list((tmp_path / "samples").glob(".*tmp"))


def test_lock_excludes_a_second_driver(tmp_path: Path) -> None:
    with CampaignLock(tmp_path):
        with pytest.raises(CampaignError, match="being run by another process"):
            with CampaignLock(tmp_path):
                pass
    with CampaignLock(tmp_path):  # released
        pass
