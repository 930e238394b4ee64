#!/usr/bin/env bash
# Keep the champion, the model in production, in a Cloud Storage bucket, so
# that every CI run trains against it and extends its history.
#
#   ops/champion.sh fetch [--required] DIR   the champion from the bucket into DIR
#   ops/champion.sh check DIR                may DIR (a model to deploy) replace the bucket's champion?
#   ops/champion.sh upload DIR               DIR (a deployed model) becomes the bucket's champion, if it may
#   ops/champion.sh stage DIR                DIR (a retrained model, not yet deployed) to the
#                                            bucket's candidates/<version>/
#   ops/champion.sh candidate VERSION DIR    that staged model into DIR, for its deploy
#
# The bucket holds the model directory as `iris-classifier train` publishes it
# (metadata.json, the model files, history.jsonl, versions/) under model/.
# fetch mirrors it into DIR. upload never deletes: it adds the model's files and
# archive, then replaces history.jsonl and metadata.json, each only if it is
# still the generation it checked (a Cloud Storage precondition,
# --if-generation-match; 0: the object must not exist yet).
#
# A model may replace the champion only if it was made from it: the bucket's
# history.jsonl is the start of the model's own, and the bucket's champion is the
# version in force at the end of that start. A deploy trained against an older
# champion (another pipeline deployed since, or an approval clicked days later)
# is stale: check and upload refuse it (exit 3) instead of overwriting. A model
# that is already the champion (a re-deploy) is accepted and nothing is written.
# Turn on object versioning for the bucket (docs page "Deploying to Google
# Kubernetes Engine", nbs/deploy_gke.ipynb) so an overwritten object can still
# be recovered.
#
# Exit status: 0 done (or MODEL_BUCKET unset, for fetch without --required and
# upload), 1 failed (no published model in DIR or in the bucket, the bucket
# unreadable, a staged model not the one asked for), 2 usage or MODEL_BUCKET
# unset where it is needed, 3 stale: the champion is not the one DIR was made
# from, or changed while uploading.
#
# Environment: MODEL_BUCKET, the bucket's name (CircleCI context). Needs jq.
set -euo pipefail
shopt -s inherit_errexit  # a failed command in $(...) fails the script too

usage() {
    echo "usage: $0 fetch [--required] DIR | check DIR | upload DIR | stage DIR | candidate VERSION DIR" >&2
    exit 2
}

fail() { # exit status, message (its words joined by spaces)
    echo "champion: ${*:2}" >&2
    exit "$1"
}

version_of() { # model directory
    jq -er .model_version "$1/metadata.json"
}

require_model() { # DIR, what would have been done with it
    [[ -f $1/metadata.json ]] || fail 1 "$1 has no metadata.json: not a published model, not $2"
}

listing() { # the names under the champion's folder ("" if there is none); fails if the bucket cannot be read
    local names
    names=$(gcloud storage ls "gs://$bucket/")
    grep -qxF "$remote/" <<<"$names" || return 0
    gcloud storage ls "$remote/"
}

generation() { # OBJECT under model/, LISTING: its generation, 0 if absent
    if grep -qxF "$remote/$1" <<<"$2"; then
        gcloud storage objects describe "$remote/$1" --format='value(generation)'
    else
        echo 0
    fi
}

no_bucket() { # COMMAND REQUIRED: without MODEL_BUCKET, say what that means
    if [[ $2 == true || $1 == stage || $1 == candidate || $1 == check ]]; then
        fail 2 "set MODEL_BUCKET (CircleCI context gcp-deploy), the bucket the deploy job keeps the champion in"
    fi
    case $1 in
        fetch) echo "champion: MODEL_BUCKET is not set: no champion to train against" \
            "(the accuracy gate alone decides, and the model's history starts afresh)" ;;
        upload) echo "champion: MODEL_BUCKET is not set: the deployed model is not kept as the champion" ;;
        *) usage ;;
    esac
    exit 0
}

fetch() { # DIR REQUIRED
    local names
    # Listing the bucket fails on a missing bucket or missing rights, which must not pass for "no champion yet".
    names=$(listing)
    if [[ -z $names ]]; then
        [[ $2 == false ]] || fail 1 "no champion in $remote/: deploy once from main (the deploy job puts it there)"
        echo "champion: no champion in $remote/ yet: the accuracy gate alone decides;" \
            "the deploy job will put the model there"
        return
    fi
    mkdir -p "$1"
    gcloud storage rsync --recursive --delete-unmatched-destination-objects "$remote" "$1"
    [[ -f $1/metadata.json ]] || fail 1 "$remote/ has no metadata.json: not a published model"
    echo "champion: model $(version_of "$1") fetched from $remote/ into $1"
}

in_force_after() { # HISTORY FILE, number of lines: the version in force after them ("" for none)
    head -n "$2" "$1" | jq -rs 'last | .model_version // ""'
}

decide() { # DIR: sets `meta_gen` and `history_gen` (the generations to replace); returns 1 when DIR is the champion
    local dir=$1 names champion="" lines=0 mine
    mine=$(version_of "$dir")
    names=$(listing)
    meta_gen=$(generation metadata.json "$names")
    history_gen=$(generation history.jsonl "$names")
    if [[ $meta_gen != 0 ]]; then champion=$(gcloud storage cat "$remote/metadata.json" | jq -r .model_version); fi
    [[ $champion != "$mine" ]] || { echo "champion: model $mine is already the champion in $remote/"; return 1; }
    local theirs
    theirs=$(mktemp)
    if [[ $history_gen != 0 ]]; then gcloud storage cat "$remote/history.jsonl" >"$theirs"; fi
    lines=$(wc -l <"$theirs")
    if ! cmp -s "$theirs" <(head -n "$lines" "$dir/history.jsonl") ||
        [[ $(in_force_after "$theirs" "$lines") != "$champion" ]]; then
        rm -f "$theirs"
        fail 3 "stale: model $mine was not made from the champion ${champion:-(none)} in $remote/ \
(its history does not continue the bucket's: another deploy came first). \
Re-run the pipeline to train against the champion."
    fi
    rm -f "$theirs"
    echo "champion: model $mine may replace the champion ${champion:-(none yet)} in $remote/"
}

put() { # FILE under DIR, DIR, generation it must replace
    gcloud storage cp --if-generation-match="$3" "$2/$1" "$remote/$1" ||
        fail 3 "stale: $remote/$1 changed while uploading (another deploy?): not replaced; re-run the pipeline"
}

upload() { # DIR
    local dir=$1 meta_gen history_gen
    decide "$dir" || return 0
    # The model's files and its archive first: nothing points at them until metadata.json does.
    gcloud storage rsync --recursive --exclude='^(metadata\.json|history\.jsonl)$' "$dir" "$remote"
    put history.jsonl "$dir" "$history_gen"
    put metadata.json "$dir" "$meta_gen"
    echo "champion: model $(version_of "$dir") is the champion in $remote/"
}

stage() { # DIR
    local staged
    staged="gs://$bucket/candidates/$(version_of "$1")"
    gcloud storage rsync --recursive --delete-unmatched-destination-objects "$1" "$staged"
    echo "champion: model $(version_of "$1") staged in $staged/ for its deploy"
}

candidate() { # VERSION DIR
    local staged="gs://$bucket/candidates/$1"
    mkdir -p "$2"
    gcloud storage rsync --recursive --delete-unmatched-destination-objects "$staged" "$2"
    [[ $(version_of "$2" 2>/dev/null) == "$1" ]] || fail 1 "$staged/ does not hold model $1"
    echo "champion: model $1 fetched from $staged/ into $2"
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
    [[ $version =~ ^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}$ ]] || fail 2 "'$version' is not a model version"
fi
(($# == 1)) || usage
dir=$1
[[ -n ${MODEL_BUCKET:-} ]] || no_bucket "$command" "$required"
bucket=${MODEL_BUCKET#gs://}
bucket=${bucket%/}
remote="gs://$bucket/model"

case $command in
    fetch) fetch "$dir" "$required" ;;
    check) require_model "$dir" checking; decide "$dir" || true ;;
    upload) require_model "$dir" uploading; upload "$dir" ;;
    stage) require_model "$dir" staging; stage "$dir" ;;
    candidate) candidate "$version" "$dir" ;;
    *) usage ;;
esac
