"""eokit.parameters: `eokit run` parameters parsed, checked and picked per notebook (most tests: test_pipeline)."""

from __future__ import annotations

from pathlib import Path

import pytest

from badinput import refuses
from eokit import parameters, pipeline
from eokit.parameters import parameters_for, parse_parameters


def test_pipeline_reexports_the_parameter_functions() -> None:
    for name in ("parse_parameters", "check_parameters", "parameters_for", "declared_parameters"):
        assert getattr(pipeline, name) is getattr(parameters, name)


def test_parse_parameters_reads_yaml_values_and_sections(tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    f.write_text("epochs: 5\n'06': {epochs: 2}\n")
    params = parse_parameters([("lr", "0.5"), ("note", "None")], [f])
    assert params == {"epochs": 5, "06": {"epochs": 2}, "lr": 0.5, "note": None}
    assert parameters_for("06_train.ipynb", params)["epochs"] == 2
    assert parameters_for("02_sample.ipynb", params)["epochs"] == 5


@pytest.mark.bad_input
def test_parse_parameters_refuses_a_name_given_twice() -> None:
    with refuses(ValueError, "-p epochs", "given twice"):
        parse_parameters([("epochs", "1"), ("epochs", "2")])
