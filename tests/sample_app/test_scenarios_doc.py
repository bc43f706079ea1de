"""docs/scenarios.md keeps up with the schema: every field of every model in
harness/model/scenario.py is described there, and so is every variable of the
sample app's environment contract."""

from __future__ import annotations

import re
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from harness.model.scenario import Scenario

REPO = Path(__file__).resolve().parents[2]
DOC = (REPO / "docs" / "scenarios.md").read_text(encoding="utf-8")


def _models(annotation) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models(arg)]


def schema_fields(model: type[BaseModel] = Scenario, seen: set | None = None) -> list[tuple[str, str]]:
    """(model name, camelCase field name) for every field reachable from Scenario."""
    seen = set() if seen is None else seen
    if model in seen:
        return []
    seen.add(model)
    out = []
    for name, field in model.model_fields.items():
        if field.exclude:
            continue
        out.append((model.__name__, field.alias or name))
        for sub in _models(field.annotation):
            out.extend(schema_fields(sub, seen))
    return out


FIELDS = schema_fields()


def test_the_walk_finds_nested_fields():
    names = {f for _, f in FIELDS}
    assert {"maxSurge", "initialDelaySeconds", "httpHeaders", "endpointPropagationDelaySeconds"} <= names


@pytest.mark.parametrize("model, field", FIELDS, ids=[f"{m}.{f}" for m, f in FIELDS])
def test_every_schema_field_is_documented(model, field):
    # as `field`, or inside a dotted path in backticks (`strategy.rollingUpdate.maxSurge`)
    assert re.search(r"`[^`\n]*\b" + re.escape(field) + r"\b[^`\n]*`", DOC), \
        f"docs/scenarios.md does not describe {model}.{field}"


def test_every_sample_app_variable_is_documented():
    app = (REPO / "sample-app" / "app.py").read_text(encoding="utf-8")
    variables = set(re.findall(r'env, "([A-Z_]+)"', app)) | {"HOST", "POD_NAME", "APP_VERSION"}
    assert len(variables) >= 15
    for var in sorted(variables):
        assert f"`{var}`" in DOC, f"docs/scenarios.md does not describe {var}"
        assert var in (REPO / "sample-app" / "README.md").read_text(encoding="utf-8"), var


def test_every_shipped_scenario_is_in_the_table():
    for path in sorted((REPO / "scenarios").glob("*.yaml")):
        assert f"| `{path.stem}` |" in DOC, path.stem
