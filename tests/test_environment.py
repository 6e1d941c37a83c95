"""pyproject.toml, environment.yml and binder/ must list the same dependencies with the same ranges."""

from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
# PyPI names whose conda-forge / environment.yml spelling differs.
_ALIASES = {"tensorflow-cpu": "tensorflow"}


def _norm(name: str) -> str:
    return _ALIASES.get(name.lower().replace("_", "-"), name.lower().replace("_", "-"))


def _pyproject() -> dict[str, str]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(meta["dependencies"])
    for extra in meta.get("optional-dependencies", {}).values():
        reqs.extend(extra)
    out: dict[str, str] = {}
    for line in reqs:
        req = Requirement(line)
        out[_norm(req.name)] = str(req.specifier)
        for extra in req.extras:  # dask[distributed] -> dask + distributed, same range
            out[_norm(extra)] = str(req.specifier)
    return out


def _environment(path: Path) -> dict[str, str]:
    env = yaml.safe_load(path.read_text())
    out: dict[str, str] = {}
    for dep in env["dependencies"]:
        items = dep["pip"] if isinstance(dep, dict) else [dep]
        for item in items:
            if item.startswith("-e") or item.split("=")[0].split(">")[0].split("<")[0] in ("python", "pip"):
                continue
            req = Requirement(item)
            out[_norm(req.name)] = str(req.specifier)
    return out


def _diff(a: dict[str, str], b: dict[str, str]) -> list[str]:
    return [f"{k}: pyproject {a.get(k)!r} vs {b.get(k)!r}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def test_environment_yml_matches_pyproject() -> None:
    assert _diff(_pyproject(), _environment(ROOT / "environment.yml")) == []


def test_binder_matches_pyproject_and_pins_python() -> None:
    binder = ROOT / "binder" / "environment.yml"
    assert _diff(_pyproject(), _environment(binder)) == []
    pythons = [
        d for d in yaml.safe_load(binder.read_text())["dependencies"] if isinstance(d, str) and d.startswith("python")
    ]
    assert pythons and pythons[0].startswith("python=3.1")


def test_binder_postbuild_installs_the_package() -> None:
    post = ROOT / "binder" / "postBuild"
    text = post.read_text()
    assert text.startswith("#!/bin/bash") and "set -e" in text and "pip install" in text and " -e ." in text
    assert post.stat().st_mode & stat.S_IXUSR


def test_drift_is_detected(tmp_path: Path) -> None:
    """The check itself must fail on a changed range or a missing package."""
    env = (ROOT / "environment.yml").read_text().replace("  - pooch>=1.8\n", "  - pooch>=1.0\n")
    env = env.replace("  - tqdm>=4.66\n", "")
    p = tmp_path / "environment.yml"
    p.write_text(env)
    problems = _diff(_pyproject(), _environment(p))
    assert any(s.startswith("pooch") for s in problems) and any(s.startswith("tqdm") for s in problems)


def test_ci_calls_the_readme_test_command() -> None:
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert "make test" in (ROOT / "README.md").read_text() and "make demo" in (ROOT / "README.md").read_text()
    assert os.access(ROOT / ".ci" / "run", os.X_OK)


def test_license_is_an_spdx_expression_setuptools_can_read() -> None:
    """PEP 639: `license` is an SPDX string (the TOML table is deprecated); setuptools reads it from 77 on."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert isinstance(data["project"]["license"], str) and data["project"]["license"].strip()
    (setuptools,) = [Requirement(r) for r in data["build-system"]["requires"] if Requirement(r).name == "setuptools"]
    assert not setuptools.specifier.contains("76.9") and setuptools.specifier.contains("77.0")
