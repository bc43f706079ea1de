"""A Deployment document read into the scenario's own shape (``deployment:``
and ``app:`` fields), field by field, remembering where each came from so a
bad value is reported at its manifest line, and listing every field present
that the model does not carry (harness.model.workload builds on this).
"""

from __future__ import annotations

from typing import Any

from harness.model.k8syaml import Document, Path_, field_path

#: pod spec / container fields the model carries (everything else present is "unmodelled")
POD_MODELLED = {"containers", "terminationGracePeriodSeconds", "topologySpreadConstraints", "affinity"}
HOSTNAME_KEY = "kubernetes.io/hostname"
CONTAINER_MODELLED = {"name", "image", "imagePullPolicy", "ports", "env", "readinessProbe", "livenessProbe",
                      "startupProbe", "lifecycle"}
SPEC_MODELLED = {"replicas", "selector", "strategy", "minReadySeconds", "progressDeadlineSeconds", "template"}
PROBES = ("startupProbe", "readinessProbe", "livenessProbe")
PROBE_FIELDS = {"httpGet", "tcpSocket", "exec", "initialDelaySeconds", "periodSeconds", "timeoutSeconds",
                "successThreshold", "failureThreshold"}
#: Kubernetes' defaults where they differ from the scenario's own
K8S_DEFAULTS = {"replicas": 1, "progressDeadlineSeconds": 600, "terminationGracePeriodSeconds": 30}



def _container(dep: Document, name: str | None) -> int:
    containers = dep.get(("spec", "template", "spec", "containers"))
    if not isinstance(containers, list) or not containers:
        raise dep.error(("spec", "template", "spec", "containers"), "a Deployment needs at least one container")
    if name is None:
        return 0
    for i, c in enumerate(containers):
        if isinstance(c, dict) and c.get("name") == name:
            return i
    have = ", ".join(str(c.get("name")) for c in containers if isinstance(c, dict))
    raise dep.error(("spec", "template", "spec", "containers"),
                    f"no container named {name!r} (containers: {have}); fix workload.container")


def _ports(c: dict[str, Any]) -> dict[str, int]:
    return {str(p.get("name")): p.get("containerPort") for p in c.get("ports") or []
            if isinstance(p, dict) and p.get("name")}


def _resolve_port(doc: Document, path: Path_, port: Any, named: dict[str, int]) -> int | None:
    if port is None or isinstance(port, int):
        return port
    if isinstance(port, str) and port.isdigit():
        return int(port)
    if isinstance(port, str) and port in named:
        return named[port]
    raise doc.error(path, f"port {port!r} is neither a number nor a named port of the container "
                          f"({', '.join(named) or 'none named'})")


def _handler(doc: Document, path: Path_, h: Any, named: dict[str, int], extra: list[str]) -> Any:
    if not isinstance(h, dict):
        return h
    out = dict(h)
    for key in ("httpGet", "tcpSocket"):
        if isinstance(out.get(key), dict):
            action = {k: v for k, v in out[key].items() if k in ("path", "port", "httpHeaders")}
            for k in out[key]:
                if k not in action:
                    extra.append(f"{doc.source}:{doc.line_of(path + (key, k))}: {field_path(path + (key, k))}")
            action["port"] = _resolve_port(doc, path + (key, "port"), action.get("port"), named)
            if action.get("port") is None:
                action.pop("port")
            out[key] = action
    return out


def _unmodelled(doc: Document, base: Path_, node: dict[str, Any], keep: set[str], out: list[str]) -> None:
    for key, value in node.items():
        if key not in keep and value not in ({}, [], None, ""):  # an empty field changes nothing
            path = base + (key,)
            out.append(f"{doc.source}:{doc.line_of(path)}: {field_path(path)}")


def model_of(dep: Document, *, container: str | None = None) -> tuple[dict[str, Any], dict[str, Any], int,
                                                                           list[str], dict[tuple, Path_]]:
    """The scenario-shaped ``deployment:`` and ``app:`` fields of a Deployment
    document, the container index, the fields left out, and where each
    scenario field came from (for error messages)."""
    if dep.api_version != "apps/v1":
        raise dep.error(("apiVersion",), f"{dep.api_version!r}: only apps/v1 Deployments are supported")
    spec = dep.get(("spec",))
    if not isinstance(spec, dict):
        raise dep.error(("spec",), "missing or not a mapping")
    pod = dep.get(("spec", "template", "spec"))
    if not isinstance(pod, dict):
        raise dep.error(("spec", "template", "spec"), "missing or not a mapping (the pod template)")
    ci = _container(dep, container)
    cpath: Path_ = ("spec", "template", "spec", "containers", ci)
    c = dep.get(cpath)
    if not isinstance(c, dict):
        raise dep.error(cpath, "a container must be a mapping")
    named = _ports(c)
    unmodelled: list[str] = []
    _unmodelled(dep, ("spec",), spec, SPEC_MODELLED, unmodelled)
    _unmodelled(dep, ("spec", "template", "spec"), pod, POD_MODELLED, unmodelled)
    _unmodelled(dep, cpath, c, CONTAINER_MODELLED, unmodelled)
    for i, other in enumerate(pod.get("containers") or []):
        if i != ci:
            p = ("spec", "template", "spec", "containers", i)
            unmodelled.append(f"{dep.source}:{dep.line_of(p)}: {field_path(p)} (container "
                              f"{(other or {}).get('name')!r} is not run locally)")

    where: dict[tuple, Path_] = {("name",): ("metadata", "name")}
    d: dict[str, Any] = {"name": dep.name}
    for key in ("replicas", "strategy", "minReadySeconds", "progressDeadlineSeconds"):
        if key in spec:
            d[key] = spec[key]
            where[(key,)] = ("spec", key)
        elif key in K8S_DEFAULTS:
            d[key] = K8S_DEFAULTS[key]
    if isinstance(d.get("strategy"), dict):
        d["strategy"] = {k: v for k, v in d["strategy"].items() if k in ("type", "rollingUpdate")}
    d["terminationGracePeriodSeconds"] = pod.get("terminationGracePeriodSeconds",
                                                 K8S_DEFAULTS["terminationGracePeriodSeconds"])
    where[("terminationGracePeriodSeconds",)] = ("spec", "template", "spec", "terminationGracePeriodSeconds")
    _placement(dep, pod, d, where, unmodelled)
    for probe in PROBES:
        if probe in c:
            ppath = cpath + (probe,)
            p = c[probe]
            if isinstance(p, dict):
                _unmodelled(dep, ppath, p, PROBE_FIELDS, unmodelled)
                p = _handler(dep, ppath, {k: v for k, v in p.items() if k in PROBE_FIELDS}, named, unmodelled)
            d[probe] = p
            where[(probe,)] = ppath
    lifecycle = c.get("lifecycle")
    if isinstance(lifecycle, dict):
        _unmodelled(dep, cpath + ("lifecycle",), lifecycle, {"preStop"}, unmodelled)
        if "preStop" in lifecycle:
            d["lifecycle"] = {"preStop": _handler(dep, cpath + ("lifecycle", "preStop"), lifecycle["preStop"],
                                                  named, unmodelled)}
            where[("lifecycle",)] = cpath + ("lifecycle",)
    elif lifecycle is not None:
        raise dep.error(cpath + ("lifecycle",), "must be a mapping")

    app: dict[str, Any] = {"image": c.get("image") or "", "stopSignal": "SIGTERM"}
    where[("image",)] = cpath + ("image",)
    ports = c.get("ports") or []
    if isinstance(ports, list) and ports and isinstance(ports[0], dict):
        app["containerPort"] = ports[0].get("containerPort")
        where[("containerPort",)] = cpath + ("ports", 0, "containerPort")
    env: dict[str, Any] = {}
    for i, e in enumerate(c.get("env") or []):
        epath = cpath + ("env", i)
        if not isinstance(e, dict) or not isinstance(e.get("name"), str):
            raise dep.error(epath, "an env entry needs a name")
        if "value" in e:
            env[e["name"]] = "" if e["value"] is None else e["value"]
        elif e.get("name") not in ("POD_NAME", "PORT"):  # the local platform sets these two itself
            unmodelled.append(f"{dep.source}:{dep.line_of(epath)}: {field_path(epath)} "
                              f"({e['name']}: valueFrom is not resolved locally)")
    app["env"] = env
    where[("env",)] = cpath + ("env",)
    return d, app, ci, unmodelled, where


def _placement(dep: Document, pod: dict[str, Any], d: dict[str, Any], where: dict[tuple, Path_],
               unmodelled: list[str]) -> None:
    """Node-level spreading and pod anti-affinity, which the local platform
    plays across its nodes; other topology keys and affinities are listed."""
    base: Path_ = ("spec", "template", "spec")
    spread = pod.get("topologySpreadConstraints")
    if isinstance(spread, list):
        kept = []
        for i, t in enumerate(spread):
            if isinstance(t, dict) and t.get("topologyKey") == HOSTNAME_KEY:
                kept.append({k: v for k, v in t.items() if k in ("maxSkew", "topologyKey", "whenUnsatisfiable",
                                                                   "nodeTaintsPolicy", "labelSelector")})
            else:
                path = base + ("topologySpreadConstraints", i)
                unmodelled.append(f"{dep.source}:{dep.line_of(path)}: {field_path(path)} (only "
                                  f"{HOSTNAME_KEY} is modelled)")
        if kept:
            d["topologySpreadConstraints"] = kept
            where[("topologySpreadConstraints",)] = base + ("topologySpreadConstraints",)
    affinity = pod.get("affinity")
    if isinstance(affinity, dict):
        for key in affinity:
            if key != "podAntiAffinity" and affinity[key]:
                path = base + ("affinity", key)
                unmodelled.append(f"{dep.source}:{dep.line_of(path)}: {field_path(path)}")
        anti = affinity.get("podAntiAffinity")
        if isinstance(anti, dict):
            out: dict[str, Any] = {}
            for kind in ("requiredDuringSchedulingIgnoredDuringExecution",
                         "preferredDuringSchedulingIgnoredDuringExecution"):
                terms = []
                for i, t in enumerate(anti.get(kind) or []):
                    term = (t.get("podAffinityTerm") if kind.startswith("preferred") else t) or {}
                    if term.get("topologyKey") == HOSTNAME_KEY:
                        terms.append(t)
                    else:
                        path = base + ("affinity", "podAntiAffinity", kind, i)
                        unmodelled.append(f"{dep.source}:{dep.line_of(path)}: {field_path(path)} (only "
                                          f"{HOSTNAME_KEY} is modelled)")
                if terms:
                    out[kind] = terms
            if out:
                d["affinity"] = {"podAntiAffinity": out}
                where[("affinity",)] = base + ("affinity",)
