#!/usr/bin/env bash
# Keep the champion, the model in production, in a Cloud Storage bucket, so
# that every CI run trains against it and extends its history.
#
#   ops/champion.sh fetch [--required] DIR   the champion from the bucket into DIR
#   ops/champion.sh upload DIR               DIR (a deployed model) to the bucket
#   ops/champion.sh stage DIR                DIR (a retrained model, not yet deployed) to the
#                                            bucket's candidates/<version>/
#   ops/champion.sh candidate VERSION DIR    that staged model into DIR, for its deploy
#
# The bucket holds the model directory as `iris-classifier train` publishes it
# (metadata.json, the model files, history.jsonl, versions/) under model/, and
# is mirrored both ways: DIR becomes exactly the champion, and the bucket
# exactly the deployed model. Turn on object versioning for the bucket
# (docs page "Deploying to Google Kubernetes Engine", nbs/deploy_gke.ipynb) so an overwritten
# champion can be recovered.
#
# Environment: MODEL_BUCKET, the bucket's name (CircleCI context). Unset, fetch
# and upload say so and do nothing, unless fetch is --required; stage and
# candidate fail.
set -euo pipefail

usage() {
    echo "usage: $0 fetch [--required] DIR | upload DIR | stage DIR | candidate VERSION DIR" >&2
    exit 2
}
version_of() {
    sed -n 's/^ *"model_version": "\([^"]*\)".*/\1/p' "$1/metadata.json"
}
(($# >= 2)) || usage
command=$1
shift
required=false
if [[ $command == fetch && $1 == --required ]]; then
    required=true
    shift
fi
version=""
if [[ $command == candidate ]]; then
    (($# == 2)) || usage
    version=$1
    shift
    [[ $version =~ ^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}$ ]] || { echo "champion: '$version' is not a model version" >&2; exit 2; }
fi
(($# == 1)) || usage
dir=$1

if [[ -z ${MODEL_BUCKET:-} ]]; then
    if [[ $required == true || $command == stage || $command == candidate ]]; then
        echo "champion: set MODEL_BUCKET (CircleCI context gcp-deploy), the bucket the deploy job keeps the champion in" >&2
        exit 2
    fi
    case $command in
        fetch) echo "champion: MODEL_BUCKET is not set: no champion to train against (the accuracy gate alone decides, and the model's history starts afresh)" ;;
        upload) echo "champion: MODEL_BUCKET is not set: the deployed model is not kept as the champion" ;;
        *) usage ;;
    esac
    exit 0
fi
bucket=${MODEL_BUCKET#gs://}
remote="gs://${bucket%/}/model"

case $command in
    fetch)
        # Listing the bucket fails on a missing bucket or missing rights, which
        # must not pass for "no champion yet".
        listing=$(gcloud storage ls "gs://${bucket%/}/")
        if ! grep -qxF "$remote/" <<<"$listing"; then
            if [[ $required == true ]]; then
                echo "champion: no champion in $remote/: deploy once from main (the deploy job puts it there)" >&2
                exit 1
            fi
            echo "champion: no champion in $remote/ yet: the accuracy gate alone decides; the deploy job will put the model there"
            exit 0
        fi
        mkdir -p "$dir"
        gcloud storage rsync --recursive --delete-unmatched-destination-objects "$remote" "$dir"
        if [[ ! -f $dir/metadata.json ]]; then
            echo "champion: $remote/ has no metadata.json: not a published model" >&2
            exit 1
        fi
        echo "champion: model $(version_of "$dir") fetched from $remote/ into $dir"
        ;;
    upload)
        if [[ ! -f $dir/metadata.json ]]; then
            echo "champion: $dir has no metadata.json: not a published model, not uploading" >&2
            exit 1
        fi
        gcloud storage rsync --recursive --delete-unmatched-destination-objects "$dir" "$remote"
        echo "champion: model $(version_of "$dir") is the champion in $remote/"
        ;;
    stage)
        if [[ ! -f $dir/metadata.json ]]; then
            echo "champion: $dir has no metadata.json: not a published model, not staging" >&2
            exit 1
        fi
        staged="gs://${bucket%/}/candidates/$(version_of "$dir")"
        gcloud storage rsync --recursive --delete-unmatched-destination-objects "$dir" "$staged"
        echo "champion: model $(version_of "$dir") staged in $staged/ for its deploy"
        ;;
    candidate)
        staged="gs://${bucket%/}/candidates/$version"
        mkdir -p "$dir"
        gcloud storage rsync --recursive --delete-unmatched-destination-objects "$staged" "$dir"
        if [[ $(version_of "$dir" 2>/dev/null) != "$version" ]]; then
            echo "champion: $staged/ does not hold model $version" >&2
            exit 1
        fi
        echo "champion: model $version fetched from $staged/ into $dir"
        ;;
    *) usage ;;
esac
