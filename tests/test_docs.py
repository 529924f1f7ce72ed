"""The repository stands on its own and its documents stay true to the code.

- Sources are cited by author and year or by outlet and date, never by a file outside the
  repository (issue 10): the five press reports are described in ``data/README.md`` and in the
  References of ``docs/model.md`` under the outlet and date the code and the record cite.
- ``docs/model.md`` Section 8 documents every configuration field with the default and the range
  the code has (``sim.params.RANGES``, ``field_range``), so that the tables cannot drift.
- Every name of the code that ``docs/model.md`` cites (``rules.us_act``, ``model.DRAW_SLOTS``,
  ``us.schedule_evidence``, ``US.end_week``, ...) exists, no setting the code has removed is still
  described, and the tables of the code's own constants (draw slots, settings a batch cannot vary)
  are the code's.
- The example likelihood ratios and back-down probabilities of Sections 7.6 and 7.10 are what
  ``sim.rules`` computes at the defaults.

Fast: reads text files, builds one small model without running it, and calls a few compiled rules
(no model run, no subprocess).
"""

from __future__ import annotations

import dataclasses
import os
import re
from enum import Enum
from pathlib import Path

import pytest

from sim import params as P
from sim.params import RANGES, ConfigError, RunConfig, field_range

ROOT = Path(__file__).resolve().parents[1]
MODEL_MD = ROOT / "docs" / "model.md"

# The five press reports behind the model's vocabulary, as the code and the documents cite them.
PRESS_REPORTS = ("Yonhap, 1 Feb 2017", "Korea JoongAng Daily, 2 Nov 2022", "Qatar News Agency, 21 Dec 2016",
                 "Korea Times, 3 Feb 2017", "EFE, 31 Jan 2023")

# Citations of files outside the repository: the design brief and the numbered press-report files
# of the shared folder. Written so that this file's own text does not match them.
OUTSIDE = re.compile(r"DESIGN\.md|\bseeds? 00[0-4]\b|shared/seed[s]|\.\./shared/", re.IGNORECASE)
TEXT_SUFFIXES = {".py", ".md", ".yaml", ".yml", ".csv", ".ipynb", ".toml", ".txt", ".cfg", ".ini"}
SKIP_DIRS = {"outputs", "multirun", "build", "dist", "node_modules", "__pycache__"}


def _project_files():
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in SKIP_DIRS
                   and not d.endswith(".egg-info")]
        for name in files:
            path = Path(folder, name)
            if path.suffix in TEXT_SUFFIXES:
                yield path


def test_the_project_cites_nothing_outside_the_repository():
    hits = []
    for path in _project_files():
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if OUTSIDE.search(line):
                hits.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:100]}")
    assert not hits, "cite by author and year or by outlet and date instead:\n" + "\n".join(hits)


@pytest.mark.parametrize("document", ["data/README.md", "docs/model.md"])
def test_each_press_report_is_described_under_the_citation_the_code_uses(document):
    text = (ROOT / document).read_text(encoding="utf-8")
    for report in PRESS_REPORTS:
        assert f"**{report}**" in text, f"{document} does not describe the report cited as '{report}'"


# ------------------------------------------------------------------ docs/model.md Section 8

TABLE_CLASSES = {"8.1": "RunConfig", "8.2": "ScenarioConfig", "8.3": "PolicyConfig", "8.4": "ModelParams"}
DOCUMENTED_CLASSES = ("RunConfig", "ScenarioConfig", "PolicyConfig", "ModelParams", "CalendarEvent",
                      "DatedEvent", "Era", "PosturePeriod", "ParameterDraws",
                      "StudyConfig")


def _section_8() -> str:
    text = MODEL_MD.read_text(encoding="utf-8")
    return text[text.index("## 8. Details: parameters"):text.index("### 8.5 ")]


def _documented_fields() -> dict[tuple[str, str], dict[str, str]]:
    """{(class name, field): {column: cell}} from the field tables of Section 8."""
    rows: dict[tuple[str, str], dict[str, str]] = {}
    cls = header = None
    for line in _section_8().splitlines():
        heading = re.match(r"### (8\.\d)", line)
        if heading:
            cls = TABLE_CLASSES.get(heading.group(1))
        named = re.match(r"`(\w+)` fields", line)
        if named:
            cls = named.group(1)
        if line.startswith("Default calendar"):
            cls = None
        if not line.startswith("|"):
            header = None
            continue
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if cells[0] == "Field":
            header = cells
            continue
        field = re.fullmatch(r"`(\w+)`", cells[0])
        if cls and header and field:
            key = (cls, field.group(1))
            assert len(cells) == len(header), f"{key}: {len(cells)} cells, the header has {len(header)}"
            assert key not in rows, f"{key} is documented twice"
            rows[key] = dict(zip(header, cells, strict=True))
    return rows


DOCS = _documented_fields()


def _fields(cls_name: str) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(getattr(P, cls_name))}


def test_every_config_field_is_documented_and_no_documented_field_is_stale():
    for cls_name in DOCUMENTED_CLASSES:
        documented = {name for cls, name in DOCS if cls == cls_name}
        assert documented == set(_fields(cls_name)), (
            f"{cls_name}: missing from docs/model.md {sorted(set(_fields(cls_name)) - documented)}, "
            f"not in the code {sorted(documented - set(_fields(cls_name)))}")


def _default(field: dataclasses.Field):
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


def test_documented_defaults_are_the_code_defaults():
    for (cls_name, name), cells in DOCS.items():
        value = _default(_fields(cls_name)[name])
        shown = cells["Default"].strip("`").strip('"')
        if isinstance(value, bool):
            assert shown == str(value), (cls_name, name, shown, value)
        elif isinstance(value, (int, float)):
            assert float(shown) == value, f"{cls_name}.{name}: docs say {shown}, the code {value}"
        elif isinstance(value, Enum):
            assert shown == value.value, (cls_name, name, shown, value)
        elif value is None or isinstance(value, str):
            assert shown == str(value), (cls_name, name, shown, value)


def test_the_range_column_shows_each_field_range_of_the_code():
    for cls_name, table in RANGES.items():
        types = {n: f.type for n, f in _fields(cls_name).items()}
        for name in table:
            assert (cls_name, name) in DOCS, f"{cls_name}.{name} is not in docs/model.md Section 8"
            cell = DOCS[(cls_name, name)].get("Range")
            assert cell is not None, f"{cls_name}.{name}: its table in docs/model.md has no Range column"
            rng = field_range(cls_name, name)
            assert str(rng) in cell, f"{cls_name}.{name}: docs/model.md says '{cell}', the code {rng}"
            integer = types[name] == "int"
            assert ("integer" in cell) == integer, f"{cls_name}.{name}: '{cell}' (type {types[name]})"
    for (cls_name, name), cells in DOCS.items():
        # an interval in the Range column of a field without a range in the code is stale
        if re.search(r"[\[(]-?[\d.]+, ", cells.get("Range", "")) and name not in RANGES.get(cls_name, {}):
            assert cls_name == "RunConfig" or name in ("start_date", "date"), (cls_name, name, cells["Range"])
        if name in ("start_date", "date"):
            assert f"[{P.DATE_MIN}, {P.DATE_MAX}]" in cells["Range"], (cls_name, name, cells["Range"])


def test_range_families_and_named_ranges_in_the_text_are_the_code_ranges():
    text = _section_8()
    text = text[:text.index("### 8.1")]
    named = re.findall(r"`(\w+)` ([\[(]-?[\d.]+, -?[\d.]+[\])])", text)
    assert len(named) >= 12, named  # the families and the per-field ranges are all checked
    for name, shown in named:
        rng = getattr(P, name, None) if name.isupper() else field_range("ModelParams", name)
        assert isinstance(rng, P.Range), name
        assert shown == str(rng), f"docs/model.md says `{name}` {shown}, the code {rng}"


@pytest.mark.parametrize("name", ["credibility", "replications", "seed"])
def test_the_top_level_ranges_are_the_ones_run_config_checks(name):
    cell = DOCS[("RunConfig", name)]["Range"]
    interval = re.search(r"([\[(])(-?[\d.]+), (-?[\d.]+)([\])])", cell)
    at_least = re.search(r"≥ (-?[\d.]+)", cell)
    assert interval or at_least, cell
    integer = "integer" in cell
    step = 1 if integer else 1e-9
    number = int if integer else float
    if interval:
        low, high = number(interval.group(2)), number(interval.group(3))
        inside, outside = [low, high], [low - step, high + step]
    else:
        low = number(at_least.group(1))
        inside, outside = [low, low + 10**6], [low - step]
    for value in inside:
        RunConfig(**{name: value})
    for value in outside:
        with pytest.raises(ConfigError):
            RunConfig(**{name: value})


# ------------------------------------------------------------------ docs/model.md against the code

def _model_text() -> str:
    return MODEL_MD.read_text(encoding="utf-8")


def _table_after(marker: str) -> list[list[str]]:
    """The body rows of the first Markdown table after ``marker``, as lists of cells."""
    text = _model_text()
    lines = text[text.index(marker):].splitlines()
    rows = []
    for line in lines:
        if not line.startswith("|"):
            if rows:
                break
            continue
        rows.append([c.strip() for c in line.strip().strip("|").split(" | ")])
    return rows[2:]  # without the header and the |---| line


@pytest.fixture(scope="module")
def code_objects():
    """What a name in the text can refer to: modules, classes, and a small model's instances."""
    import importlib

    from sim import model as model_module
    from sim.recording import Results

    modules = {name: importlib.import_module(f"sim.{name}") for name in (
        "rules", "agents", "model", "recording", "record_kernels", "calendar", "events", "history",
        "metrics", "calibrate", "outputs", "diagnostics", "params", "config")}
    m = model_module.DeterrenceModel(RunConfig(replications=2, progress=False))  # built, never run
    instances = {"model": m, "us": m.us, "dprk": m.dprk, "rok": m.rok, "japan": m.japan,
                 "recorder": m.recorder, "q": set(m.param_table.dtype.names)}
    by_class = {type(obj): obj for obj in (m, m.us, m.dprk, m.rok, m.japan, m.recorder)}
    classes = {cls.__name__: cls for cls in (*by_class, Results, RunConfig, P.ModelParams,
                                             model_module.CalendarHandler, model_module.EraHandler,
                                             model_module.PostureHandler)}
    return modules, instances, classes, by_class


CODE_NAME = re.compile(r"`(?:sim\.)?([A-Za-z_]\w*)\.([A-Za-z_]\w*)")
NOT_CODE = {"scenario", "policy", "params", "self", "start", "np", "numpy", "mesa", "dataclasses",
            "numba", "agent", "summary", "replications", "comparison", "escalation", "events.csv"}


def test_every_name_of_the_code_the_document_cites_exists(code_objects):
    import importlib.util

    import sim

    modules, instances, classes, by_class = code_objects
    missing = []
    for root, name in set(CODE_NAME.findall(_model_text())):
        if root in NOT_CODE or name in ("py", "csv", "json", "png", "parquet", "md", "yaml"):
            continue
        if root in instances and (name in instances[root] if root == "q" else hasattr(instances[root], name)):
            continue
        if root in modules and hasattr(modules[root], name):
            continue
        if root in classes:
            cls = classes[root]
            if hasattr(cls, name) or (cls in by_class and hasattr(by_class[cls], name)) or (
                    dataclasses.is_dataclass(cls) and name in {f.name for f in dataclasses.fields(cls)}):
                continue
        if root == "sim" and (hasattr(sim, name) or importlib.util.find_spec(f"sim.{name}")):
            continue
        missing.append(f"{root}.{name}")
    assert not missing, f"docs/model.md cites names the code does not have: {sorted(missing)}"


def test_no_removed_setting_is_described():
    from sim.config import REMOVED_KEYS

    text = _model_text()
    stale = [key for key in REMOVED_KEYS if key.startswith("params.") and key.split(".", 1)[1] in text]
    assert not stale, f"docs/model.md still describes removed settings: {stale}"


def test_the_draw_slot_table_is_the_models():
    from sim.model import DRAW_SLOTS

    rows = _table_after("| slot | name | stream | when |")
    assert [(int(r[0]), r[1].strip("`")) for r in rows] == list(enumerate(DRAW_SLOTS))


def test_the_constants_table_lists_the_settings_a_batch_cannot_vary():
    from sim.model import BLOCK_SETTINGS, NOT_BATCHABLE

    rows = {r[0].strip("`"): r for r in _table_after("| Constant | Where | Value | Meaning |")}
    assert set(re.findall(r"`(\w+)`", rows["NOT_BATCHABLE"][2])) == set(NOT_BATCHABLE)
    assert re.findall(r"`(\w+)`", rows["BLOCK_SETTINGS"][2]) == list(BLOCK_SETTINGS)


def test_the_inauguration_weeks_quoted_are_the_calendars():
    import datetime as dt

    from sim.calendar import inauguration_weeks

    text = _model_text()
    baseline = P.ScenarioConfig()
    for start, weeks in ((baseline.start, baseline.weeks), (dt.date(2016, 1, 4), 417)):
        a, b = inauguration_weeks(start, weeks)
        assert f"weeks {a}\nand {b}" in text or f"weeks {a} and {b}" in text.replace("\n", " "), (start, a, b)


@pytest.fixture(scope="module")
def default_record():
    from sim import rules

    return rules.param_table(P.ModelParams(), 1, {}, 0.7, 0.7)[0]


def test_the_back_down_table_is_what_sim_rules_computes(default_record):
    from sim import rules

    rows = _table_after("<!-- back-down table")
    assert len(rows) == 2
    for row, resolute in zip(rows, (True, False), strict=True):
        factor = float(re.search(r"f = ([\d.]+)", row[0]).group(1))
        assert factor == (1.0 if resolute else P.ModelParams().us_irresolute_factor), row
        for cell, on_station in zip(row[1:], (0.0, 1.0), strict=True):
            got = rules.back_down_probability(default_record, factor, on_station, True)
            assert abs(float(cell) - got) <= 5e-4 + 1e-12, (row[0], on_station, cell, got)


def test_the_likelihood_ratio_table_is_what_sim_rules_computes(default_record):
    from sim import rules
    from sim.agents import DPRK_ACTIONS

    rows = _table_after("<!-- likelihood-ratio table")
    assert len(rows) >= 6
    irresolute = P.ModelParams().us_irresolute_factor
    for row in rows:
        action, need, on_station, challenged = row[0].strip("`"), float(row[1]), int(row[2]), int(row[3])
        assert need == rules.DPRK_SEVERITY[DPRK_ACTIONS.index(action)], row
        back_res = rules.back_down_probability(default_record, 1.0, float(on_station), True)
        back_irr = rules.back_down_probability(default_record, irresolute, float(on_station), True)
        for response, cell in enumerate(row[4:8]):
            got = rules.us_log_likelihood_ratio(default_record, response, need, on_station, True,
                                                bool(challenged), back_res, back_irr)
            assert abs(float(cell) - got) <= 5e-4 + 1e-12, (row, response, cell, got)
