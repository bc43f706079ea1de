#!/usr/bin/env python3
"""Write a one-layer container image archive from a root filesystem directory.

The e2e cluster has no registry and no Docker daemon, so its images (pause and
the sample app) are made here: a docker-archive tarball (manifest.json, image
config JSON, one uncompressed layer tar) that `ctr images import` accepts.
Standard library only; GNU tar packs the layer because it is much faster than
tarfile for a few hundred MB of rootfs.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

# Contents the runtime provides itself; keeping them out keeps the layer portable.
EXCLUDES = ("./dev/*", "./proc/*", "./sys/*", "./run/*", "./tmp/*", "./var/cache/apt/*",
            "./var/lib/apt/lists/*")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pack_layer(rootfs: Path, layer: Path) -> None:
    cmd = ["tar", "--numeric-owner", "--xattrs", "-C", str(rootfs), "-cf", str(layer)]
    cmd += [f"--exclude={pattern}" for pattern in EXCLUDES]
    cmd.append(".")
    subprocess.run(cmd, check=True)


def image_config(*, diff_id: str, entrypoint: list[str], env: list[str], workdir: str) -> dict:
    return {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Entrypoint": entrypoint, "Env": env, "WorkingDir": workdir},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff_id}"]},
        "history": [{"created_by": "rollout-harness cluster/images/image_archive.py"}],
    }


def write_archive(*, rootfs: Path, tag: str, entrypoint: list[str], env: list[str],
                  workdir: str, out: Path) -> None:
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        work = Path(tmp)
        layer = work / "layer.tar"
        pack_layer(rootfs, layer)
        diff_id = sha256_file(layer)
        config = json.dumps(image_config(diff_id=diff_id, entrypoint=entrypoint, env=env,
                                         workdir=workdir), sort_keys=True).encode()
        config_name = hashlib.sha256(config).hexdigest() + ".json"
        manifest = [{"Config": config_name, "RepoTags": [tag], "Layers": [f"{diff_id}/layer.tar"]}]
        partial = out.with_suffix(".partial")
        with tarfile.open(partial, "w") as archive:
            archive.add(layer, arcname=f"{diff_id}/layer.tar")
            _add_bytes(archive, config_name, config)
            _add_bytes(archive, "manifest.json", json.dumps(manifest).encode())
        partial.replace(out)


def _add_bytes(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rootfs", type=Path, required=True)
    parser.add_argument("--tag", required=True, help="e.g. localhost/name:tag")
    parser.add_argument("--entrypoint", required=True, help="JSON list, e.g. '[\"/pause\"]'")
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE, repeatable")
    parser.add_argument("--workdir", default="/")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if not args.rootfs.is_dir():
        print(f"image_archive: --rootfs {args.rootfs} is not a directory", file=sys.stderr)
        return 2
    entrypoint = json.loads(args.entrypoint)
    write_archive(rootfs=args.rootfs, tag=args.tag, entrypoint=entrypoint, env=args.env,
                  workdir=args.workdir, out=args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
