"""_quiet: TF_CPP_MIN_LOG_LEVEL applied to what TensorFlow's C++ side writes to stderr while first imported."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from eokit._quiet import TF_ENV, keep_line, set_env

NOTICE = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
INFO = "I0000 00:00:1796124756.739946    4206 port.cc:153] oneDNN custom operations are on. You may see ...\n"
WARN = "W0000 00:00:1796124756.739946    4206 env.cc:12] a warning\n"
ERROR = "E0000 00:00:1796124756.739946    4206 env.cc:12] an error\n"
FATAL = "F0000 00:00:1796124756.739946    4206 env.cc:12] fatal\n"
PLAIN = "Traceback (most recent call last): something the user must see\n"


@pytest.mark.parametrize(
    ("level", "kept"),
    [
        (0, [NOTICE, INFO, WARN, ERROR, FATAL, PLAIN]),
        (1, [WARN, ERROR, FATAL, PLAIN]),
        (2, [ERROR, FATAL, PLAIN]),
        (3, [FATAL, PLAIN]),
    ],
)
def test_keep_line_applies_the_level_to_absl_lines_only(level: int, kept: list[str]) -> None:
    lines = [NOTICE, INFO, WARN, ERROR, FATAL, PLAIN]
    assert [line for line in lines if keep_line(line, level)] == kept


def test_set_env_keeps_what_the_user_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    monkeypatch.delenv("EOKIT_TEST_QUIET", raising=False)
    added = set_env({**TF_ENV, "EOKIT_TEST_QUIET": "1"})
    assert added == {"EOKIT_TEST_QUIET": "1"} and os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"


def _run(code: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env={**clean, **env}, capture_output=True, text=True, timeout=300
    )


def test_filtered_stderr_works_on_the_file_descriptor() -> None:
    """What C++ writes to descriptor 2 is filtered; other bytes, and Python's own stderr, pass in order."""
    code = f"""
        import os, sys
        from eokit._quiet import filtered_stderr
        with filtered_stderr(2):
            os.write(2, {(NOTICE + INFO + WARN + PLAIN).encode()!r})
            print("from python", file=sys.stderr)
        os.write(2, b"after\\n")
    """
    res = _run(code)
    assert res.returncode == 0, res.stderr
    assert res.stderr == PLAIN + "from python\nafter\n"


@pytest.mark.slow
def test_import_tensorflow_after_eokit_is_quiet() -> None:
    """With TF_CPP_MIN_LOG_LEVEL=0 TensorFlow prints its start-up lines; after `import eokit` (level 2) none."""
    code = """
        import importlib.util, sys
        import eokit
        from eokit import _quiet
        assert importlib.util.find_spec("tensorflow") is not None  # a look-up alone keeps the hook
        assert any(isinstance(f, _quiet._FirstImport) for f in sys.meta_path)
        import keras  # imports tensorflow first
        import tensorflow as tf
        assert type(tf.__loader__).__name__ != "_QuietLoader" and tf.__spec__.loader is tf.__loader__
        assert not any(isinstance(f, _quiet._FirstImport) for f in sys.meta_path)
        assert _quiet.install() is False
        print(tf.constant([1, 2]).numpy().sum(), keras.__version__ is not None)
    """
    loud = _run(code, TF_CPP_MIN_LOG_LEVEL="0")
    assert loud.returncode == 0, loud.stderr
    if "absl::InitializeLog" not in loud.stderr and "oneDNN" not in loud.stderr:
        pytest.skip("this TensorFlow build writes no start-up lines at import")
    quiet = _run(code)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stdout.strip() == "3 True"
    assert "absl::InitializeLog" not in quiet.stderr and "oneDNN" not in quiet.stderr, quiet.stderr
