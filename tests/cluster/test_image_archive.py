"""The registry-free image writer used by the e2e cluster (cluster/images/image_archive.py).

`ctr images import` trusts the archive's manifest and config: a wrong diff_id or
tag makes containerd refuse the image or run something else, so check them here
without a cluster.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import tarfile
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "cluster" / "images" / "image_archive.py"

pytestmark = pytest.mark.skipif(shutil.which("tar") is None, reason="GNU tar not installed")


def _load():
    spec = importlib.util.spec_from_file_location("image_archive", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture()
def archive(tmp_path: Path) -> Path:
    rootfs = tmp_path / "rootfs"
    (rootfs / "app").mkdir(parents=True)
    (rootfs / "app" / "app.py").write_text("print('hi')\n")
    (rootfs / "proc").mkdir()
    (rootfs / "proc" / "stale").write_text("must not be packed\n")
    out = tmp_path / "image.tar"
    _load().write_archive(rootfs=rootfs, tag="localhost/demo:1", entrypoint=["/app/app.py"],
                          env=["PORT=8080"], workdir="/app", out=out)
    return out


def _members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def test_manifest_names_tag_config_and_layer(archive: Path) -> None:
    files = _members(archive)
    (entry,) = json.loads(files["manifest.json"])
    assert entry["RepoTags"] == ["localhost/demo:1"]
    assert entry["Config"] in files and entry["Layers"][0] in files


def test_config_diff_id_is_the_layer_digest(archive: Path) -> None:
    files = _members(archive)
    (entry,) = json.loads(files["manifest.json"])
    config = json.loads(files[entry["Config"]])
    layer_digest = hashlib.sha256(files[entry["Layers"][0]]).hexdigest()
    assert config["rootfs"]["diff_ids"] == [f"sha256:{layer_digest}"]
    assert entry["Config"] == hashlib.sha256(files[entry["Config"]]).hexdigest() + ".json"
    assert (config["os"], config["architecture"]) == ("linux", "amd64")
    assert config["config"] == {"Entrypoint": ["/app/app.py"], "Env": ["PORT=8080"],
                                "WorkingDir": "/app"}


def test_layer_keeps_files_and_mount_points_but_not_their_contents(archive: Path, tmp_path: Path) -> None:
    files = _members(archive)
    (entry,) = json.loads(files["manifest.json"])
    layer = tmp_path / "layer.tar"
    layer.write_bytes(files[entry["Layers"][0]])
    with tarfile.open(layer) as tar:
        names = {m.name.removeprefix("./") for m in tar.getmembers()}
    assert "app/app.py" in names
    assert "proc" in names and "proc/stale" not in names


def test_missing_rootfs_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = _load().main(["--rootfs", str(tmp_path / "nope"), "--tag", "localhost/x:1",
                         "--entrypoint", '["/x"]', "--out", str(tmp_path / "x.tar")])
    assert code == 2
    assert "--rootfs" in capsys.readouterr().err
