"""Kubernetes manifests as users have them: multi-document YAML files (or
stdin, as ``helm template … |`` and ``kustomize build |`` write it), each
document kept with the file, its index, its kind and name, and the line of
every field, so an error or a risk can point at ``deploy.yaml:42``.

    docs = load_documents(["k8s/app.yaml", "-"])
    docs[0].where(("spec", "replicas"))   # 'k8s/app.yaml:9 (document 1: Deployment api)'

Bad input raises ``ManifestError`` (exit 2) naming the file, the document and
the field.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any, Iterable

import yaml

from harness.errors import BadInput

#: stands for standard input in a list of manifest files
STDIN = "-"

Path_ = tuple[str | int, ...]


class ManifestError(BadInput):
    """A manifest is not what the harness can use; the message names the
    file, the document (index, kind, name), the field and the fix."""


def field_path(path: Path_) -> str:
    """('spec', 'template', 'containers', 0, 'image') -> 'spec.template.containers[0].image'."""
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(document)"


@dataclasses.dataclass
class Document:
    """One YAML document of a manifest file."""

    source: str  # the file as the user named it ('-' reads as '<stdin>')
    index: int  # 0-based among the file's non-empty documents
    line: int  # 1-based line where the document starts
    data: dict[str, Any]
    lines: dict[Path_, int]

    @property
    def kind(self) -> str:
        return str(self.data.get("kind") or "")

    @property
    def name(self) -> str:
        return str((self.data.get("metadata") or {}).get("name") or "")

    @property
    def api_version(self) -> str:
        return str(self.data.get("apiVersion") or "")

    def label(self) -> str:
        return f"document {self.index + 1}: {self.kind or '(no kind)'} {self.name or '(no name)'}".rstrip()

    def line_of(self, path: Path_) -> int:
        """The line of a field, or of its nearest parent that is present."""
        for n in range(len(path), -1, -1):
            if tuple(path[:n]) in self.lines:
                return self.lines[tuple(path[:n])]
        return self.line

    def where(self, path: Path_ = ()) -> str:
        return f"{self.source}:{self.line_of(path)} ({self.label()})"

    def error(self, path: Path_, problem: str) -> ManifestError:
        return ManifestError(f"{self.where(path)}: {field_path(path)}: {problem}")

    def get(self, path: Path_, default: Any = None) -> Any:
        node: Any = self.data
        for p in path:
            if isinstance(p, int):
                if not isinstance(node, list) or p >= len(node):
                    return default
            elif not isinstance(node, dict) or p not in node:
                return default
            node = node[p]
        return node


def _line_map(node: yaml.Node, path: Path_, out: dict[Path_, int]) -> None:
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                out[path + (key.value,)] = key.start_mark.line + 1
                _line_map(value, path + (key.value,), out)
                out[path + (key.value,)] = key.start_mark.line + 1  # the key's line, not the value's
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _line_map(item, path + (i,), out)


def parse_documents(text: str, source: str) -> list[Document]:
    """Every non-empty document of one YAML stream, with its field lines."""
    try:
        nodes = [n for n in yaml.compose_all(text, Loader=yaml.SafeLoader)]
        values = list(yaml.load_all(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        raise ManifestError(f"{where}: not valid YAML: {getattr(exc, 'problem', None) or exc}") from exc
    docs: list[Document] = []
    for node, value in zip(nodes, values):
        if node is None or value is None:
            continue  # an empty document (a trailing '---', a template that rendered nothing)
        line = node.start_mark.line + 1
        if not isinstance(value, dict):
            raise ManifestError(f"{source}:{line} (document {len(docs) + 1}): expected a Kubernetes object "
                                f"(a mapping with apiVersion, kind, metadata), got a {type(value).__name__}")
        lines: dict[Path_, int] = {}
        _line_map(node, (), lines)
        doc = Document(source=source, index=len(docs), line=line, data=value, lines=lines)
        if value.get("kind") == "List" and isinstance(value.get("items"), list):
            # `kubectl get -o yaml` wraps objects in a List: take its items
            for i, item in enumerate(value["items"]):
                if isinstance(item, dict):
                    sub = {k[2:]: v for k, v in lines.items() if k[:2] == ("items", i)}
                    docs.append(Document(source=source, index=len(docs), line=lines.get(("items", i), line),
                                         data=item, lines=sub))
            continue
        docs.append(doc)
    return docs


def read_source(name: str, *, stdin_text: str | None = None) -> tuple[str, str]:
    """(display name, text) of a manifest file, or of stdin for '-'."""
    if name == STDIN:
        text = stdin_text if stdin_text is not None else sys.stdin.read()
        return "<stdin>", text
    p = Path(name)
    if p.is_dir():
        raise ManifestError(f"{name}: is a directory; pass the YAML files (e.g. {name}/*.yaml), or "
                            f"`kustomize build {name} | rollout-harness … -`")
    try:
        return name, p.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ManifestError(f"{name}: manifest file not found") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{name}: cannot read: {exc}") from exc


def load_documents(names: Iterable[str], *, stdin_text: str | None = None) -> list[Document]:
    """All documents of the given files in order; '-' reads stdin (once)."""
    docs: list[Document] = []
    names = list(names)
    if names.count(STDIN) > 1:
        raise ManifestError("'-' (stdin) can be given only once")
    for name in names:
        source, text = read_source(name, stdin_text=stdin_text)
        docs.extend(parse_documents(text, source))
    for d in docs:
        for key in ("apiVersion", "kind"):
            if not isinstance(d.data.get(key), str) or not d.data.get(key):
                hint = (" (this looks like a rollout-harness scenario: give its Kubernetes manifests, or use "
                        "`rollout-harness validate` for a scenario)"
                        if {"traffic", "disruption", "gate", "workload"} & set(d.data) else "")
                raise d.error((key,), "missing or not a string; every Kubernetes object needs apiVersion and kind"
                              + hint)
        meta = d.data.get("metadata")
        if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta.get("name"):
            raise d.error(("metadata", "name"), "missing; every object needs metadata.name")
    return docs
