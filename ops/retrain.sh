#!/usr/bin/env bash
# Continuous training: what the scheduled CircleCI pipeline does, and CI
# training against the champion.
#
#   ops/retrain.sh fetch DIR                 production records (RECORDS_BUCKET) into DIR/records, and the
#                                            champion (MODEL_BUCKET) into DIR/champion
#   ops/retrain.sh run DIR [OPTION...]       with DIR/champion as the published model, judge DIR/records
#                                            (iris-classifier monitor); on drift, or with FORCE_RETRAIN=true,
#                                            train a challenger with their feedback (without, when none came)
#   ops/retrain.sh train [--champion DIR] [OPTION...]
#                                            train a challenger (against the champion in DIR, if any); a
#                                            refused one is not an error
#   ops/retrain.sh decision                  print the version of the model `run` published; exit 1 if none
#   ops/retrain.sh hand-over IMAGE           stage that model in MODEL_BUCKET (ops/champion.sh stage) and
#                                            start the pipeline that deploys it and IMAGE after approval
#
# The champion is copied into the artifacts' model/ before training, where
# `iris-classifier train` finds it and publishes over it: fetched elsewhere, it
# never mixes with the new model in the CircleCI workspace, whose layers add
# files but never remove them.
#
# OPTIONs go to `iris-classifier train` (e.g. --min-accuracy 0.9). `run`
# writes retrain/outcome.txt under the artifacts directory, and retrain/deploy
# (the new model's version) only when a challenger was published: the later
# jobs build and deploy only then. Training calls iris-classifier rather than
# `make train`, whose exit status (2 for any failure) would hide a refusal.
#
# Exit status of iris-classifier: monitor 0 no drift, 3 drift, 2 bad input,
# 1 failed; train 0 published, 4 challenger refused (the champion stays),
# 5 not comparable with the champion (the champion stays; a person decides),
# 1 failed or below the gate, 2 bad input.
#
# hand-over starts the deploy pipeline through CircleCI's API (v2, "trigger a
# new pipeline") with the pipeline parameters deploy_model and deploy_image, on
# the branch that ran the schedule: a scheduled run that publishes nothing
# leaves no approval waiting, and one that publishes has its own pipeline to
# approve and deploy.
#
# Environment: RECORDS_BUCKET and MODEL_BUCKET (bucket names, CircleCI context),
# CIRCLE_TOKEN (a CircleCI API token, context) and PROJECT_SLUG (the pipeline's
# project slug) for hand-over, CIRCLECI_API (default https://circleci.com/api/v2),
# FORCE_RETRAIN (true or false, default false), MONITOR_SINCE (default 7d),
# IRIS_ARTIFACTS_DIR (default: the checkout's artifacts/), IRIS_CLASSIFIER
# (default: the checkout's .venv/bin/iris-classifier), PYTHON (default python3).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
artifacts=${IRIS_ARTIFACTS_DIR:-$root/artifacts}
iris=${IRIS_CLASSIFIER:-$root/.venv/bin/iris-classifier}
decided=$artifacts/retrain

usage() {
    echo "usage: $0 fetch DIR | run DIR [OPTION...] | train [--champion DIR] [OPTION...] | decision | hand-over IMAGE" >&2
    exit 2
}

fail() { # exit status, message
    echo "retrain: $2" >&2
    exit "$1"
}

say() { # message, also kept in retrain/outcome.txt when `run` writes one
    echo "retrain: $1"
    if [[ -d $decided ]]; then echo "$1" >>"$decided/outcome.txt"; fi
}

model_version() {
    "${PYTHON:-python3}" -c 'import json, sys; print(json.load(open(sys.argv[1]))["model_version"])' "$artifacts/model/metadata.json"
}

fetch() { # DIR
    [[ -n ${RECORDS_BUCKET:-} ]] ||
        fail 2 "set RECORDS_BUCKET (CircleCI context gcp-deploy), the bucket the log sink exports prediction records to"
    [[ -n ${MODEL_BUCKET:-} ]] ||
        fail 2 "set MODEL_BUCKET (CircleCI context gcp-deploy), the bucket the deploy job keeps the champion in"
    local bucket=${RECORDS_BUCKET#gs://}
    mkdir -p "$1/records"
    gcloud storage rsync --recursive "gs://${bucket%/}" "$1/records"
    say "$(find "$1/records" -type f | wc -l) file(s) of records from gs://${bucket%/} in $1/records"
    bash "$here/champion.sh" fetch --required "$1/champion"
}

use_champion() { # DIR: its model becomes the published one, if it holds one
    if [[ ! -f $1/metadata.json ]]; then
        say "no champion in $1: the accuracy gate alone decides"
        return
    fi
    rm -rf "$artifacts/model"
    mkdir -p "$artifacts/model"
    cp -R "$1/." "$artifacts/model/"
    say "training against the champion $(model_version)"
}

train() { # [--champion DIR] OPTION...; sets `trained` to 0 (published) or 4 (refused)
    if [[ ${1:-} == --champion ]]; then
        (($# >= 2)) || usage
        use_champion "$2"
        shift 2
    fi
    trained=0
    "$iris" train "$@" || trained=$?
    case $trained in
        0) say "challenger $(model_version) published" ;;
        4) say "challenger refused: the champion $(model_version) stays published, nothing new to deploy" ;;
        5) fail 5 "the champion check could not compare the challenger with the champion $(model_version), which stays published: a person decides (a push pipeline with publish_uncompared: true publishes anyway)" ;;
        *) fail "$trained" "training failed (iris-classifier train exited $trained): see the run's executed notebook under $artifacts/runs" ;;
    esac
}

run() { # DIR OPTION...
    local records=$1/records champion=$1/champion force=${FORCE_RETRAIN:-false} verdict=0
    shift
    [[ $force == true || $force == false ]] || fail 2 "FORCE_RETRAIN must be true or false, not '$force'"
    [[ " $* " != *" --publish-uncompared "* ]] || fail 2 "scheduled retraining never publishes an uncompared model: drop --publish-uncompared"
    [[ -d $records && -f $champion/metadata.json ]] ||
        fail 2 "no records or no champion in ${records%/records} (ops/retrain.sh fetch puts them there)"
    rm -rf "$decided"
    mkdir -p "$decided"
    use_champion "$champion"
    "$iris" monitor --records "$records" --since "${MONITOR_SINCE:-7d}" || verdict=$?
    case $verdict in
        0) say "no drift in the records since ${MONITOR_SINCE:-7d}" ;;
        3) say "drift in the records since ${MONITOR_SINCE:-7d} (reports/drift.json says what)" ;;
        *)
            [[ $force == true ]] ||
                fail "$verdict" "monitoring could not judge the records (iris-classifier monitor exited $verdict): see its message above"
            say "monitoring could not judge the records (exit $verdict)"
            ;;
    esac
    if [[ $verdict != 3 && $force == false ]]; then
        say "nothing trained, nothing to deploy"
        return
    fi
    [[ $verdict == 3 ]] || say "FORCE_RETRAIN is on: training anyway"
    if grep -rqsE '"kind": ?"feedback"' "$records"; then
        train "$@" --with-feedback "$records"
    else
        say "no feedback in the records: training on the data alone"
        train "$@"
    fi
    if ((trained == 0)); then
        model_version >"$decided/deploy"
        say "build_and_push and hand_over follow for model $(<"$decided/deploy"); its deploy pipeline waits for approval"
    fi
}

hand_over() { # IMAGE
    local image=$1 version body
    version=$(decision)
    [[ $image == *-"$version" ]] || fail 2 "image $image is not the image of model $version"
    [[ -n ${CIRCLE_TOKEN:-} ]] || fail 2 "set CIRCLE_TOKEN (CircleCI context gcp-deploy), an API token that may start pipelines"
    [[ -n ${PROJECT_SLUG:-} ]] || fail 2 "set PROJECT_SLUG, the pipeline's project slug (<< pipeline.project.slug >>)"
    bash "$here/champion.sh" stage "$artifacts/model"
    body=$(printf '{"branch": "%s", "parameters": {"deploy_model": "%s", "deploy_image": "%s"}}' "${CIRCLE_BRANCH:-main}" "$version" "$image")
    curl --fail-with-body --silent --show-error --request POST --header "Circle-Token: $CIRCLE_TOKEN" \
        --header "Content-Type: application/json" --data "$body" \
        "${CIRCLECI_API:-https://circleci.com/api/v2}/project/$PROJECT_SLUG/pipeline" >"$decided/hand-over.json" ||
        fail 1 "CircleCI did not start the deploy pipeline: $(cat "$decided/hand-over.json" 2>/dev/null)"
    say "model $version and image $image handed over to pipeline $("${PYTHON:-python3}" -c 'import json, sys; print(json.load(open(sys.argv[1])).get("number", "?"))' "$decided/hand-over.json"): approve-deploy there deploys them"
}

decision() {
    if [[ -s $decided/deploy ]]; then
        cat "$decided/deploy"
        return
    fi
    fail 1 "no challenger was published (no drift, or it was refused; $decided/outcome.txt says which): nothing to build or deploy"
}

(($# >= 1)) || usage
command=$1
shift
case $command in
    fetch) (($# == 1)) || usage; fetch "$1" ;;
    run) (($# >= 1)) || usage; run "$@" ;;
    train) train "$@" ;;
    decision) (($# == 0)) || usage; decision ;;
    hand-over) (($# == 1)) || usage; hand_over "$1" ;;
    *) usage ;;
esac
