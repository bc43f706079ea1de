#!/usr/bin/env bash
# docker-loads the given image archives into the running private dockerd,
# skipping any whose image (by config digest) is loaded already, as it is on a
# warm run: the dockerd data root is kept in the cache.
#   load-images.sh ARCHIVE...
source "$(dirname "$0")/lib.sh"
for archive in "$@"; do
  manifest="$(tar -xOf "$archive" manifest.json)"
  id="sha256:$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])[0]["Config"].removesuffix(".json"))' "$manifest")"
  tag="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])[0]["RepoTags"][0])' "$manifest")"
  if [[ "$(docker image inspect -f '{{.Id}}' "$tag" 2>/dev/null)" == "$id" ]]; then
    log "$tag already loaded"
    continue
  fi
  start=$(date +%s)
  docker load -q -i "$archive" >/dev/null || die "docker load -i $archive failed"
  log "loaded $tag in $(( $(date +%s) - start )) s"
done
docker image prune -f >/dev/null   # earlier builds of these tags, now untagged
