#!/usr/bin/env bash
# Continuous training: what the scheduled CircleCI pipeline does, and CI
# training against the champion.
#
#   ops/retrain.sh fetch DIR                 the days of production records (RECORDS_BUCKET) the monitoring
#                                            window needs into DIR/records, the champion (MODEL_BUCKET) into
#                                            DIR/champion, and the version the cluster serves into DIR/in-force
#   ops/retrain.sh run DIR [OPTION...]       with the model in force as the published model, judge DIR/records
#                                            (iris-classifier monitor); on drift, or with FORCE_RETRAIN=true,
#                                            train a challenger with their feedback (without, when none came)
#   ops/retrain.sh train [--champion DIR] [OPTION...]
#                                            train a challenger (against the champion in DIR, if any, or the
#                                            model in force that DIR/../in-force names); a refused one is not
#                                            an error
#   ops/retrain.sh in-force FILE             write the model version the cluster serves into FILE
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
# The model in force is the one the cluster serves: ops/deploy.sh annotates
# the Deployment's pod template with its model version, and a `kubectl rollout
# undo` brings the older template back with its annotation. When that is not
# the bucket's champion, `run` and `train --champion` roll the champion back
# to it (an entry "rolled back" in its history, from the archive in versions/)
# before monitoring and training, so monitor judges the predictions of the
# model really serving and a challenger is compared with it; the next deploy
# (a challenger, or the model in force again) carries that entry to the bucket.
#
# Exit status of this script: 0 done (for `run`: no drift, not enough data,
# a refused challenger, or a challenger published; retrain/outcome.txt says
# which), 1 failed (monitor's notebook or training failed, below the gate,
# the cluster unreadable), 2 bad input or usage, 5 not comparable with the
# champion (a person decides); `decision` exits 1 when nothing was published.
# Exit status of iris-classifier: monitor 0 no drift, 3 drift, 4 not enough
# data in the window (no retrain; the job stays green), 2 bad input, 1 the
# monitoring notebook failed; train 0 published, 4 challenger refused (the
# champion stays), 5 not comparable with the champion (the champion stays; a
# person decides), 1 failed or below the gate, 2 bad input.
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
# FORCE_RETRAIN (true or false, default false), MONITOR_SINCE (default 7d: a
# duration back, 7d or 12h, or a UTC date), RETRAIN_NOW (the end of the window,
# fixed by fetch; default now), K8S_NAMESPACE (fetch's kubectl; default the
# context's),
# IRIS_ARTIFACTS_DIR (default: the checkout's artifacts/), IRIS_CLASSIFIER
# (default: the checkout's .venv/bin/iris-classifier), PYTHON (default python3).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
artifacts=${IRIS_ARTIFACTS_DIR:-$root/artifacts}
iris=${IRIS_CLASSIFIER:-$root/.venv/bin/iris-classifier}
decided=$artifacts/retrain

usage() {
    echo "usage: $0 fetch DIR | run DIR [OPTION...] | train [--champion DIR] [OPTION...] | decision |" \
        "hand-over IMAGE | in-force FILE" >&2
    exit 2
}

fail() { # exit status, message (its words joined by spaces)
    echo "retrain: ${*:2}" >&2
    exit "$1"
}

say() { # message (its words joined by spaces), also kept in retrain/outcome.txt when `run` writes one
    echo "retrain: $*"
    if [[ -d $decided ]]; then echo "$*" >>"$decided/outcome.txt"; fi
}

model_version() {
    "${PYTHON:-python3}" -c 'import json, sys; print(json.load(open(sys.argv[1]))["model_version"])' \
        "$artifacts/model/metadata.json"
}

window_start() { # SINCE NOW (seconds since the epoch): the start of the monitoring window, likewise
    case $1 in
        *[0-9]d) [[ ${1%d} =~ ^[0-9]+$ ]] && echo $(($2 - ${1%d} * 86400)) ;;
        *[0-9]h) [[ ${1%h} =~ ^[0-9]+$ ]] && echo $(($2 - ${1%h} * 3600)) ;;
        [0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*) date -u -d "$1" +%s 2>/dev/null ;;
        *) return 1 ;;
    esac
}

window_days() { # SINCE NOW: the UTC days (YYYY/MM/DD, the log sink's folders) the window touches, newest first
    local now start day
    now=$(date -u -d "$2" +%s 2>/dev/null) || fail 2 "RETRAIN_NOW '$2' is not a time"
    start=$(window_start "$1" "$now") || fail 2 "MONITOR_SINCE '$1' is not a duration (7d, 12h) or a date"
    for ((day = now - now % 86400; day + 86400 > start; day -= 86400)); do date -u -d "@$day" +%Y/%m/%d; done
}

fetch_records() { # DIR: only the days the window needs, from each log the sink writes
    local bucket=${RECORDS_BUCKET#gs://} days listing logs log day
    bucket=gs://${bucket%/}
    days=$(window_days "${MONITOR_SINCE:-7d}" "$now")
    listing=$(gcloud storage ls "$bucket/")  # fails on a missing bucket or missing rights: not "no records"
    logs=$(grep '/$' <<<"$listing" || true)
    mkdir -p "$1/records"
    for log in $logs; do
        for day in $days; do
            gcloud storage ls "$log$day/" >/dev/null 2>&1 || continue
            gcloud storage rsync --recursive "$log$day" "$1/records/${log#"$bucket/"}$day"
        done
    done
    say "$(find "$1/records" -type f | wc -l) file(s) of records from $bucket, the $(wc -w <<<"$days") day(s) to $now"
}

in_force() { # the model version the cluster serves, from the Deployment's pod template ("" if none or no Deployment)
    local ns=()
    [[ -z ${K8S_NAMESPACE:-} ]] || ns=(--namespace "$K8S_NAMESPACE")
    kubectl "${ns[@]}" get deployment/iris-classifier --ignore-not-found -o json |
        jq -r '.spec.template.metadata.annotations["iris-classifier/model-version"] // ""'
}

fetch() { # DIR
    [[ -n ${RECORDS_BUCKET:-} ]] ||
        fail 2 "set RECORDS_BUCKET (CircleCI context gcp-deploy), the bucket the log sink exports prediction records to"
    [[ -n ${MODEL_BUCKET:-} ]] ||
        fail 2 "set MODEL_BUCKET (CircleCI context gcp-deploy), the bucket the deploy job keeps the champion in"
    now=${RETRAIN_NOW:-$(date -u +%Y-%m-%dT%H:%M:%SZ)}
    note_in_force "$1/in-force"
    fetch_records "$1"
    echo "$now" >"$1/until"
    bash "$here/champion.sh" fetch --required "$1/champion"
}

note_in_force() { # FILE: the model version the cluster serves, written into FILE ("" if the Deployment names none)
    local version
    version=$(in_force) || fail 1 "could not read deployment/iris-classifier: the model in force is unknown"
    mkdir -p "$(dirname "$1")"
    echo "$version" >"$1"
    if [[ -z $version ]]; then
        say "no Deployment, or one that names no model version (deployed before ops/deploy.sh set it):" \
            "following the champion"
    else
        say "the cluster serves model $version"
    fi
}

follow_cluster() { # CHAMPION DIR: the published model becomes the one its ../in-force names, if not the champion
    local serving champion
    [[ -f $artifacts/model/metadata.json ]] || return 0
    serving=$(cat "$(dirname "$1")/in-force" 2>/dev/null || true)
    champion=$(model_version)
    [[ -n $serving && $serving != "$champion" ]] || return 0
    say "the cluster serves model $serving, not the champion $champion (a rollout undo?): following the cluster"
    "$iris" rollback "$serving" --model-dir "$artifacts/model" ||
        fail 1 "could not roll the champion back to $serving, the model in force (is it in the champion's versions/?)"
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
        follow_cluster "$2"
        shift 2
    fi
    trained=0
    "$iris" train "$@" || trained=$?
    case $trained in
        0) say "challenger $(model_version) published" ;;
        4) say "challenger refused: the champion $(model_version) stays published, nothing new to deploy" ;;
        5) fail 5 "the champion check could not compare the challenger with the champion $(model_version), which \
stays published: a person decides (a push pipeline with publish_uncompared: true publishes anyway)" ;;
        *) fail "$trained" "training failed (iris-classifier train exited $trained): see the run's executed \
notebook under $artifacts/runs" ;;
    esac
}

judge_failed() { # monitor's exit status, FORCE_RETRAIN: not enough data passes, other failures fail unless forced
    if [[ $2 == true ]]; then
        say "monitoring could not judge the records (exit $1)"
    elif [[ $1 == 4 ]]; then
        say "not enough records in the window to judge drift (monitor exit 4): no retrain; the pipeline stays green"
    else
        fail "$1" "monitoring could not judge the records (iris-classifier monitor exited $1: $([[ $1 == 1 ]] &&
            echo "its notebook failed, see artifacts/reports" || echo "bad input")): see its message above"
    fi
}

run() { # DIR OPTION...
    local records=$1/records champion=$1/champion force=${FORCE_RETRAIN:-false} verdict=0
    shift
    [[ $force == true || $force == false ]] || fail 2 "FORCE_RETRAIN must be true or false, not '$force'"
    [[ " $* " != *" --publish-uncompared "* ]] ||
        fail 2 "scheduled retraining never publishes an uncompared model: drop --publish-uncompared"
    [[ -d $records && -f $champion/metadata.json ]] ||
        fail 2 "no records or no champion in ${records%/records} (ops/retrain.sh fetch puts them there)"
    rm -rf "$decided"
    mkdir -p "$decided"
    use_champion "$champion"
    follow_cluster "$champion"
    local window=(--since "${MONITOR_SINCE:-7d}")
    [[ ! -s ${records%/records}/until ]] || window+=(--until "$(<"${records%/records}/until")")
    "$iris" monitor --records "$records" "${window[@]}" || verdict=$?
    case $verdict in
        0) say "no drift in the records since ${MONITOR_SINCE:-7d}" ;;
        3) say "drift in the records since ${MONITOR_SINCE:-7d} (reports/drift.json says what)" ;;
        4 | 1 | 2) judge_failed "$verdict" "$force" ;;
        *) fail 1 "iris-classifier monitor exited $verdict, which it never should: see its message above" ;;
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
        say "build_and_push and hand_over follow for model $(<"$decided/deploy");" \
            "its deploy pipeline waits for approval"
    fi
}

hand_over() { # IMAGE
    local image=$1 version body number
    version=$(decision)
    [[ $image == *-"$version" ]] || fail 2 "image $image is not the image of model $version"
    [[ -n ${CIRCLE_TOKEN:-} ]] ||
        fail 2 "set CIRCLE_TOKEN (CircleCI context gcp-deploy), an API token that may start pipelines"
    [[ -n ${PROJECT_SLUG:-} ]] || fail 2 "set PROJECT_SLUG, the pipeline's project slug (<< pipeline.project.slug >>)"
    bash "$here/champion.sh" stage "$artifacts/model"
    body=$(printf '{"branch": "%s", "parameters": {"deploy_model": "%s", "deploy_image": "%s"}}' \
        "${CIRCLE_BRANCH:-main}" "$version" "$image")
    curl --fail-with-body --silent --show-error --request POST --header "Circle-Token: $CIRCLE_TOKEN" \
        --header "Content-Type: application/json" --data "$body" \
        "${CIRCLECI_API:-https://circleci.com/api/v2}/project/$PROJECT_SLUG/pipeline" >"$decided/hand-over.json" ||
        fail 1 "CircleCI did not start the deploy pipeline: $(cat "$decided/hand-over.json" 2>/dev/null)"
    number=$("${PYTHON:-python3}" -c 'import json, sys; print(json.load(open(sys.argv[1])).get("number", "?"))' \
        "$decided/hand-over.json")
    say "model $version and image $image handed over to pipeline $number: approve-deploy there deploys them"
}

decision() {
    if [[ -s $decided/deploy ]]; then
        cat "$decided/deploy"
        return
    fi
    fail 1 "no challenger was published (no drift, or it was refused; $decided/outcome.txt says which):" \
        "nothing to build or deploy"
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
    in-force) (($# == 1)) || usage; note_in_force "$1" ;;
    *) usage ;;
esac
