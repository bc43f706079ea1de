"""Multi-document manifests keep each field's line, and bad ones are refused
naming the file, the document and the field."""

from __future__ import annotations

import pytest

from harness.errors import EXIT_BAD_INPUT
from harness.model.k8syaml import ManifestError, load_documents, parse_documents

STREAM = """\
---
# Source: chart/templates/service.yaml
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector:
    app: web
---
# Source: chart/templates/hpa.yaml (rendered nothing)
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
  template:
    spec:
      containers:
        - name: app
          image: web:1
"""


def test_documents_keep_their_index_kind_name_and_field_lines():
    docs = parse_documents(STREAM, "rendered.yaml")
    assert [(d.index, d.kind, d.name) for d in docs] == [(0, "Service", "web"), (1, "Deployment", "web")]
    dep = docs[1]
    assert dep.line == 13
    assert dep.line_of(("spec", "replicas")) == 18
    assert dep.line_of(("spec", "template", "spec", "containers", 0)) == 22
    assert dep.line_of(("spec", "template", "spec", "containers", 0, "image")) == 23
    # a field that is absent points at its nearest present parent
    assert dep.line_of(("spec", "template", "spec", "containers", 0, "lifecycle")) == 22
    assert dep.where(("spec", "replicas")) == "rendered.yaml:18 (document 2: Deployment web)"


def test_a_list_from_kubectl_get_is_read_as_its_items():
    text = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata:\n    name: a\n"
    docs = parse_documents(text, "list.yaml")
    assert [(d.kind, d.name, d.line) for d in docs] == [("Service", "a", 4)]


def test_stdin_is_read_once_as_dash():
    docs = load_documents(["-"], stdin_text=STREAM)
    assert {d.source for d in docs} == {"<stdin>"}
    with pytest.raises(ManifestError, match="only once"):
        load_documents(["-", "-"], stdin_text=STREAM)


@pytest.mark.parametrize("text, expected", [
    ("apiVersion: v1\nkind: Service\nmetadata:\n  name: a\n  labels: [x\n", r"bad\.yaml:\d+: not valid YAML"),
    ("apiVersion: v1\nmetadata:\n  name: a\n", r"bad\.yaml:1 \(document 1: \(no kind\) a\): kind: missing"),
    ("apiVersion: v1\nkind: Service\nmetadata:\n  labels: {}\n",
     r"bad\.yaml:3 \(document 1: Service \(no name\)\): metadata\.name: missing"),
    ("- a\n- b\n", r"bad\.yaml:1 \(document 1\): expected a Kubernetes object"),
], ids=["yaml-syntax", "no-kind", "no-name", "not-a-mapping"])
def test_bad_manifests_name_file_document_and_field(tmp_path, text, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ManifestError, match=expected) as err:
        load_documents([str(path)])
    assert err.value.exit_code == EXIT_BAD_INPUT


def test_missing_file_and_directory_are_bad_input(tmp_path):
    with pytest.raises(ManifestError, match="not found"):
        load_documents([str(tmp_path / "nope.yaml")])
    with pytest.raises(ManifestError, match="is a directory.*kustomize build"):
        load_documents([str(tmp_path)])
