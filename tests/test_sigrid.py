"""eokit.sigrid: SIGRID-3 charts of any ice service (CIS, METNO dialects) -> decoded codes and WMO classes."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from badinput import refuses
from eokit import sar, sigrid
from eokit.datasets import metno
from eokit.schema import ICE_CLASSES
from generators import metno as metno_gen
from generators import sigrid as gen

PROPS = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
CODE_COLUMNS = ["POLY_TYPE", *sigrid.CODE_FIELDS, "FP", "FS"]


def _classes(gdf) -> list:
    return [None if v is pd.NA else v for v in gdf["wmo_class"]]


def _codes(gdf) -> list:
    return [[None if v is pd.NA else v for v in gdf[c]] for c in CODE_COLUMNS]


def test_cis_chart_decodes_to_wmo_classes(tmp_path):
    path = gen.write_cis(tmp_path / "cis_SGRDREA_20200115T1800Z_pl_a.shp")
    gdf = sigrid.read_ice_chart(path)
    assert _classes(gdf) == gen.EXPECTED
    assert gdf.crs.coordinate_operation.method_name.startswith("Lambert Conic Conformal") and len(gdf) == len(gen.ROWS)
    assert list(gdf["POLY_TYPE_name"][-2:]) == ["land", "no data"]
    assert gdf["SA_name"].iloc[1] == "thick first-year ice" and gdf["FA_name"].iloc[1] == "fast ice"
    assert gdf["dominant"].iloc[3] == "B" and gdf["CN_name"].iloc[3] == "multi-year ice"
    assert (gdf["FP"].iloc[3], gdf["FS"].iloc[3]) == (4, 3)
    assert gdf["FP"].iloc[1] == 99 and gdf["FS"].isna().iloc[1]  # CF '99-9': undetermined, null
    assert gdf["CT_name"].iloc[7] == "bergy water" and gdf["CT_name"].iloc[4] == "7/10 to 9/10"
    assert gdf["CA"].isna().iloc[1] and gdf.attrs.get("unknown_codes") is None
    assert sigrid.to_wmo_class(gdf).tolist() == sigrid.to_wmo_class(gen.frame()).tolist()


def test_other_letter_case_numbers_and_geopackage_same_classes(tmp_path):
    recs = []
    for r in gen.records():
        m = {k.lower(): (int(v) if k not in ("POLY_TYPE", "CF") else v.lower()) for k, v in r.items()}
        recs.append(m)
    g = gen.frame(recs)
    assert "poly_type" in g.columns and g["ct"].dtype.kind == "i"
    g.to_file(tmp_path / "chart.gpkg", driver="GPKG")
    gdf = sigrid.read_ice_chart(tmp_path / "chart.gpkg")
    assert _classes(gdf) == gen.EXPECTED
    assert "POLY_TYPE" in gdf.columns and "poly_type" not in gdf.columns
    assert _codes(gdf) == _codes(sigrid.read_ice_chart(gen.write_cis(tmp_path / "a.shp")))


def test_cis_chart_through_read_ice_polygons_and_metno_open(tmp_path):
    path = gen.write_cis(tmp_path / "GEC_D_20150108.shp")
    polys = sar.read_ice_polygons(path)
    want = [ICE_CLASSES.index(c) for c in gen.EXPECTED if c is not None]
    assert polys["ice_class"].tolist() == want and polys["polygon_id"].tolist() == list(range(len(want)))
    one = metno.open(path)
    assert _classes(one) == gen.EXPECTED and set(one["scene"]) == {"GEC_D_20150108"}
    assert one["scene_time"].isna().all() and set(one["source_file"]) == {path.name}
    assert sar.read_ice_polygons(gen.frame())["ice_class"].tolist() == want  # an in-memory chart too


def test_metno_dialect_any_name(tmp_path):
    folder = metno_gen.make(tmp_path / "m", "v1")
    src = folder / f"seaice_s1_{metno_gen.SCENES[0]}"
    for ext in (".shp", ".shx", ".dbf", ".prj", ".cpg"):
        if src.with_suffix(ext).exists():
            shutil.copy(src.with_suffix(ext), (tmp_path / "renamed").with_suffix(ext))
    gdf = sigrid.read_ice_chart(tmp_path / "renamed.shp")
    assert _classes(gdf) == [
        "open water",
        "thick or deformed ice",
        "young ice",
        "newly formed ice",
        "brash/pancake ice",
        None,
    ]
    assert "id" in gdf.columns and "AREA" in gdf.columns and "area" not in gdf.columns
    assert metno.open(tmp_path / "renamed.shp")["scene"].iloc[0] == "renamed"


def _rec(pt="I", ct="-9", **kw) -> dict:
    r = {"POLY_TYPE": pt, "CT": ct, "CA": "-9", "SA": "-9", "FA": "-9"}
    r.update(kw)
    return r


@pytest.mark.parametrize(
    ("rec", "cls", "dom"),
    [
        (_rec(ct="80", CA="40", SA="95", CB="40", SB="86"), "thick or deformed ice", "A"),  # tie: thicker
        (_rec(ct="90", CA="30", SA="95", CB="60", SB="83"), "young ice", "B"),
        (_rec(ct="90", CA="60", SA="86", FA="99", CB="99", SB="99", FB="99"), "thin to medium first-year ice", "A"),
        (_rec(ct="90", CA="99", SA="95", CB="30", SB="86"), None, None),  # which type dominates is unknown
        (_rec(ct="90", CA="-9", SA="95", CB="30", SB="86"), None, None),
        (_rec(ct="30", SA="81", FA="01"), "brash/pancake ice", "A"),
        (_rec(ct="00", SA="-9"), "open water", None),
        (_rec(ct="92", SA="80"), None, "A"),
        (_rec(ct="92", SA="55"), "open water", "A"),
        (_rec(pt="W", ct="-9"), "open water", None),
        (_rec(pt="S", ct="92", SA="98"), None, None),  # ice shelf: excluded, never a sea-ice class
        (_rec(pt="N"), None, None),
        (_rec(pt="L"), None, None),
    ],
)
def test_dominant_type_and_poly_type_rules(rec, cls, dom):
    d = sigrid.decode(gen.frame([rec]))
    assert _classes(d) == [cls]
    assert (None if d["dominant"].iloc[0] is pd.NA else d["dominant"].iloc[0]) == dom


@pytest.mark.parametrize(
    ("cf", "fp", "fs"),
    [
        ("99-9", 99, None),
        ("0504", 5, 4),
        (" 0504 ", 5, 4),
        (504, 5, 4),
        (504.0, 5, 4),
        ("504", 5, 4),
        ("-9-9", None, None),
        ("-9", None, None),
        (-9, None, None),
        ("", None, None),
        (None, None, None),
        ("-922", None, 22),
        ("2299", 22, 99),
    ],
)
def test_cf_predominant_and_secondary_form(cf, fp, fs):
    d = sigrid.decode(gen.frame([_rec(ct="30", SA="81", CF=cf)]))
    assert [None if v is pd.NA else v for v in (d["FP"].iloc[0], d["FS"].iloc[0])] == [fp, fs]


def test_on_unmapped_nan_reports_and_to_wmo_class_raise(tmp_path):
    recs = gen.records()
    recs[2]["SA"] = "77"
    path = gen.write_cis(tmp_path / "c.shp", recs)
    with pytest.warns(UserWarning, match="77"):
        gdf = sigrid.read_ice_chart(path, on_unmapped="nan")
    assert gdf.attrs["unknown_codes"] == {"c.shp": {"SA": [77]}}
    assert gdf["SA"].isna().iloc[2] and gdf["wmo_class"].isna().iloc[2]
    with pytest.raises(ValueError, match="has no WMO class"):
        sigrid.to_wmo_class(gdf, on_unmapped="raise")
    with refuses(ValueError, "c.shp", "feature 2", "field SA", "77", "expected one of"):
        sigrid.read_ice_chart(path)


# ---------------------------------------------------------------- property tests (hypothesis)

_CONC = sorted(sigrid.code_table().query("kind == 'concentration'").code)
_STAGE = sorted(sigrid.code_table().query("kind == 'stage'").code)
_FORM = sorted(sigrid.code_table().query("kind == 'form'").code)
_SINGLE = [c for c in _CONC if c % 10 == 0 and 10 <= c <= 90]


def _maybe(codes: list[int]):
    """A code of `codes` or -9 (null) half of the time, as in real charts (most B/C/CN/CD fields are null)."""
    return st.one_of(st.just(-9), st.sampled_from(codes))


@st.composite
def _record(draw) -> dict:
    """A valid SIGRID-3 record, codes as 2-character strings (as CIS writes them); mostly ice of 1-3 types."""
    table = sigrid.code_table().query("kind == 'concentration'").set_index("code")
    pt = draw(st.sampled_from(["I"] * 5 + sorted(sigrid.POLY_TYPES)))
    rec, left = {"POLY_TYPE": pt}, 10
    n_types = draw(st.integers(0, 3))
    for k, (c, s, f) in enumerate([("CA", "SA", "FA"), ("CB", "SB", "FB"), ("CC", "SC", "FC")]):
        if k >= n_types:
            rec[c] = rec[s] = rec[f] = "-9"
            continue
        fits = [c2 for c2 in _SINGLE if c2 // 10 <= left - (n_types - k - 1)] or [99]
        n = draw(st.sampled_from(fits * 4 + [99, -9]))  # mostly known, as the dominant type needs them
        rec[c] = f"{n:02d}"
        left -= n // 10 if 10 <= n <= 90 else 0
        rec[s] = f"{draw(st.sampled_from(_STAGE * 4 + [-9])):02d}"
        rec[f] = f"{draw(_maybe(_FORM)):02d}"
    fits_ct = [c for c in _CONC if math.isnan(table.high[c]) or table.high[c] >= 10 - left]
    rec["CT"] = f"{draw(st.sampled_from(fits_ct)):02d}"
    for fld in ("CN", "CD"):
        rec[fld] = f"{draw(_maybe(_STAGE)):02d}"
    fp, fs = draw(_maybe(_FORM)), draw(_maybe(_FORM))
    rec["CF"] = (f"{fp:02d}" if fp >= 0 else "-9") + (f"{fs:02d}" if fs >= 0 else "-9")
    return rec


def _variants(v: str) -> list:
    """Equivalent ways producers store the code `v` (a 2-character string, '-9' = null)."""
    if v == "-9":
        return ["-9", -9, -9.0, None, "", "  ", float("nan"), " -9", np.int64(-9)]
    n = int(v)
    return [v, n, float(n), f" {v}", f"{v} ", str(n), np.int64(n), np.float64(n)]


def _case(name: str, k: int) -> str:
    return [name.upper(), name.lower(), name.title(), name[:1].lower() + name[1:].upper()][k % 4]


@st.composite
def _mutated(draw, recs: list[dict]) -> list[dict]:
    """The same records with field names in another letter case and codes in another (equivalent) form."""
    names = {f: _case(f, draw(st.integers(0, 3))) for f in recs[0]}
    drop = {
        f
        for f in ("CC", "SC", "FC", "CN", "CD", "CF")
        if all(r[f] in ("-9", "-9-9") for r in recs) and draw(st.booleans())
    }
    out = []
    for r in recs:
        m = {}
        for f, v in r.items():
            if f in drop:
                continue
            if f == "POLY_TYPE":
                val = draw(st.sampled_from([v, v.lower(), f" {v}", f"{v.lower()} "]))
            elif f == "CF":
                val = draw(
                    st.sampled_from(
                        [v, f" {v} "]
                        + ([None, "", "-9", -9, -9.0] if v == "-9-9" else [])
                        + ([int(v)] if v.isdigit() and v[0] == "0" else [])
                    )
                )
            else:
                val = draw(st.sampled_from(_variants(v)))
            m[names[f]] = val
        out.append(m)
    return out


@PROPS
@given(data=st.data(), recs=st.lists(_record(), min_size=1, max_size=6))
def test_equivalent_encodings_decode_the_same(data, recs):
    try:
        base = sigrid.decode(gen.frame(recs))
    except ValueError as e:  # a drawn record may be inconsistent: then every encoding of it is refused
        with pytest.raises(ValueError, match="feature"):
            sigrid.decode(gen.frame(data.draw(_mutated(recs))))
        assert "feature" in str(e)
        return
    other = sigrid.decode(gen.frame(data.draw(_mutated(recs))))
    assert _classes(other) == _classes(base)
    assert _codes(other) == _codes(base)
    assert set(_classes(base)) <= set(ICE_CLASSES) | {None}


_BAD = {
    "concentration": [3, 11, 14, 93, 94, 95, 98, 100, 191],
    "stage": [0, 1, 50, 56, 79, 90, 92, 94, 100],
    "form": [0, 11, 12, 20, 23, 98, 100],
}


@PROPS
@given(data=st.data(), recs=st.lists(_record(), min_size=1, max_size=4))
def test_a_code_outside_the_tables_is_refused_never_silent(data, recs):
    i = data.draw(st.integers(0, len(recs) - 1))
    field = data.draw(st.sampled_from(sorted(sigrid.CODE_FIELDS)))
    kind = sigrid.CODE_FIELDS[field]
    bad = data.draw(st.sampled_from(_BAD[kind] + ["8.5", "abc", "9-", "1e", True]))
    recs[i][field] = (
        bad
        if not isinstance(bad, int) or isinstance(bad, bool)
        else data.draw(st.sampled_from([bad, str(bad), float(bad), f" {bad:02d}"]))
    )
    with pytest.raises(ValueError) as info:
        sigrid.decode(gen.frame(recs), source="chart.shp")
    msg = str(info.value)
    assert "chart.shp" in msg and "expected" in msg and "feature" in msg
    assert f"field {field}" in msg or "partial concentrations" in msg


# ---------------------------------------------------------------- hostile inputs


def _write(tmp_path, edit=None, name="chart.shp"):
    recs = gen.records()
    if edit:
        edit(recs)
    return gen.write_cis(tmp_path / name, recs)


def _set(i, field, value):
    def f(recs):
        recs[i][field] = value

    return f


@pytest.mark.bad_input
@pytest.mark.parametrize(
    ("edit", "names"),
    [
        (_set(3, "SA", "77"), ["feature 3", "field SA", "77", "stage", "86"]),
        (_set(1, "CT", "95"), ["feature 1", "field CT", "95", "concentration code", "92"]),
        (_set(2, "CA", "8.5"), ["feature 2", "field CA", "8.5", "integer concentration code"]),
        (_set(4, "FA", "00"), ["feature 4", "field FA", "00", "form code", "22"]),
        (_set(5, "POLY_TYPE", "X"), ["feature 5", "field POLY_TYPE", "'X'", "I (ice)", "S (ice shelf)"]),
        (_set(0, "POLY_TYPE", ""), ["feature 0", "field POLY_TYPE", "N (no data)"]),
        (_set(3, "CF", "9"), ["feature 3", "field CF", "'9'", "two 2-character", "99-9"]),
        (_set(6, "CF", "0577"), ["feature 6", "field CF", "FS 77", "form code"]),
        (_set(2, "CT", "50"), ["feature 2", "partial concentrations", "CA=60", "CB=30", "CT=50", "<= CT"]),
        (_set(4, "CN", "90"), ["feature 4", "field CN", "90", "stage"]),
    ],
)
def test_bad_codes_refused(tmp_path, edit, names):
    path = _write(tmp_path, edit)
    with refuses(ValueError, "chart.shp", "expected", *names):
        sigrid.read_ice_chart(path)


@pytest.mark.bad_input
def test_missing_poly_type_field(tmp_path):
    gen.frame().drop(columns=["POLY_TYPE"]).to_file(tmp_path / "nopt.shp")
    with refuses(ValueError, "nopt.shp", "missing SIGRID-3 field", "POLY_TYPE", "expected at least"):
        sigrid.read_ice_chart(tmp_path / "nopt.shp")
    with refuses(ValueError, "nopt.shp", "not a SIGRID-3 chart", "POLY_TYPE"):
        sar.read_ice_polygons(tmp_path / "nopt.shp")


@pytest.mark.bad_input
def test_field_twice_in_different_case(tmp_path):
    g = gen.frame()
    g["sa"] = g["SA"]
    with refuses(ValueError, "GeoDataFrame", "SA", "sa", "different letter case", "expected each field once"):
        sigrid.decode(g)


@pytest.mark.bad_input
def test_empty_chart(tmp_path):
    gen.frame().iloc[:0].to_file(tmp_path / "empty.gpkg", driver="GPKG")
    with refuses(ValueError, "empty.gpkg", "no features", "expected the polygons"):
        sigrid.read_ice_chart(tmp_path / "empty.gpkg")


@pytest.mark.bad_input
def test_feature_without_geometry(tmp_path):
    g = gen.frame()
    g.loc[2, "geometry"] = None
    g.to_file(tmp_path / "nogeom.gpkg", driver="GPKG")
    with refuses(ValueError, "nogeom.gpkg", "feature(s) [2]", "no geometry", "expected one polygon"):
        sigrid.read_ice_chart(tmp_path / "nogeom.gpkg")


@pytest.mark.bad_input
def test_points_not_polygons(tmp_path):
    g = gen.frame()
    g.geometry = g.geometry.centroid
    g.to_file(tmp_path / "pts.gpkg", driver="GPKG")
    with refuses(ValueError, "pts.gpkg", "Point", "expected Polygon"):
        sigrid.read_ice_chart(tmp_path / "pts.gpkg")


@pytest.mark.bad_input
def test_no_crs(tmp_path):
    path = gen.write_cis(tmp_path / "noprj.shp")
    path.with_suffix(".prj").unlink()
    with refuses(ValueError, "noprj.shp", "no CRS", "expected"):
        sigrid.read_ice_chart(path)


@pytest.mark.bad_input
def test_file_not_found(tmp_path):
    with refuses(FileNotFoundError, "missing.shp", "does not exist"):
        sigrid.read_ice_chart(tmp_path / "missing.shp")
    with refuses(FileNotFoundError, "missing.shp", "does not exist"):
        sar.read_ice_polygons(tmp_path / "missing.shp")


@pytest.mark.bad_input
def test_not_a_vector_file(tmp_path):
    (tmp_path / "junk.shp").write_bytes(b"\x00not a shapefile" * 10)
    with refuses(ValueError, "junk.shp", "not a vector file", "expected a Shapefile"):
        sigrid.read_ice_chart(tmp_path / "junk.shp")
    with refuses(ValueError, "junk.shp", "not a vector file"):
        sar.read_ice_polygons(tmp_path / "junk.shp")


@pytest.mark.bad_input
def test_folder_given(tmp_path):
    with refuses(ValueError, str(tmp_path.name), "is a folder", "expected one SIGRID-3 chart file"):
        sigrid.read_ice_chart(tmp_path)


@pytest.mark.bad_input
def test_on_unmapped_value_checked():
    with refuses(ValueError, "on_unmapped='drop'", "expected 'raise' or 'nan'"):
        sigrid.decode(gen.frame(), on_unmapped="drop")
