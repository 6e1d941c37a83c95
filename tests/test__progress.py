"""_progress: the one home of eokit's progress bars (tqdm.auto, or text where EOKIT_PROGRESS=text)."""

from __future__ import annotations

import io

import pytest
import tqdm.auto
import tqdm.std

from badinput import refuses
from eokit._progress import PROGRESS_ENV, tqdm_class
from eokit._progress import tqdm as progress


def test_default_is_tqdm_auto(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PROGRESS_ENV, raising=False)
    assert tqdm_class() is tqdm.auto.tqdm
    monkeypatch.setenv(PROGRESS_ENV, " AUTO ")
    assert tqdm_class() is tqdm.auto.tqdm


def test_text_mode_gives_the_text_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PROGRESS_ENV, "text")
    assert tqdm_class() is tqdm.std.tqdm
    out = io.StringIO()
    with progress(range(7), desc="blocks", file=out, mininterval=0) as bar:
        assert type(bar) is tqdm.std.tqdm
        assert sum(bar) == 21
    final = out.getvalue().split("\r")[-1]
    assert final.startswith("blocks: 100%") and "7/7" in final


@pytest.mark.bad_input
def test_bad_mode_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PROGRESS_ENV, "widgets")
    with refuses(ValueError, PROGRESS_ENV, "widgets", "auto", "text"):
        progress(range(3))
