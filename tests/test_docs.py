"""The repository stands on its own and its documents stay true to the code.

- Sources are cited by author and year or by outlet and date, never by a file outside the
  repository (issue 10): the five press reports are described in ``data/README.md`` and in the
  References of ``docs/model.md`` under the outlet and date the code and the record cite.
- ``docs/model.md`` Section 8 documents every configuration field with the default and the range
  the code has (``sim.params.RANGES``, ``field_range``), so that the tables cannot drift.

Fast: reads text files only (no model run, no subprocess).
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
                      "DatedEvent", "Era", "PosturePeriod")


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
