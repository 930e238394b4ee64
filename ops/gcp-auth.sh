#!/usr/bin/env bash
# Authenticate gcloud (and through it docker and kubectl) in a CircleCI job.
#
# Default: keyless. The job's CircleCI OIDC token is exchanged through
# Workload Identity Federation for short-lived credentials of a service
# account; nothing long-lived is stored anywhere.
# Fallback, only when GCP_WIF_PROVIDER is unset: a service-account key in
# GCP_SA_KEY (base64 of the JSON key).
#
# Environment (see "CircleCI settings" in nbs/deploy_gke.ipynb):
#   GCP_PROJECT_ID        project that holds the registry and the cluster
#   GCP_WIF_PROVIDER      projects/NUMBER/locations/global/workloadIdentityPools/POOL/providers/PROVIDER
#   GCP_SERVICE_ACCOUNT   e.g. circleci-deployer@PROJECT.iam.gserviceaccount.com
#   CIRCLE_OIDC_TOKEN_V2  set by CircleCI in jobs that use a context
#   GCP_SA_KEY            fallback only
#
# Secrets only ever go to files readable by this user, never to the log.
set -euo pipefail
umask 077

: "${GCP_PROJECT_ID:?set GCP_PROJECT_ID (CircleCI context)}"

# gcloud re-reads the token file whenever it refreshes its access token, so the
# file stays for the rest of the job (the executor is discarded afterwards).
cred_dir="$HOME/.config/iris-gcp"
mkdir -p "$cred_dir"

if [[ -n "${GCP_WIF_PROVIDER:-}" ]]; then
    : "${GCP_SERVICE_ACCOUNT:?set GCP_SERVICE_ACCOUNT (CircleCI context)}"
    if [[ -z "${CIRCLE_OIDC_TOKEN_V2:-}" ]]; then
        echo "gcp-auth: no CIRCLE_OIDC_TOKEN_V2; CircleCI only issues it to jobs that use a context" >&2
        exit 1
    fi
    printf '%s' "$CIRCLE_OIDC_TOKEN_V2" >"$cred_dir/oidc-token"
    gcloud iam workload-identity-pools create-cred-config "$GCP_WIF_PROVIDER" \
        --service-account="$GCP_SERVICE_ACCOUNT" \
        --credential-source-file="$cred_dir/oidc-token" \
        --credential-source-type=text \
        --output-file="$cred_dir/credentials.json" --quiet
    gcloud auth login --cred-file="$cred_dir/credentials.json" --quiet
    echo "gcp-auth: Workload Identity Federation as $GCP_SERVICE_ACCOUNT"
elif [[ -n "${GCP_SA_KEY:-}" ]]; then
    # gcloud keeps its own copy of the key; this one is removed at once.
    key="$cred_dir/key.json"
    trap 'rm -f "$key"' EXIT
    printf '%s' "$GCP_SA_KEY" | base64 --decode >"$key"
    gcloud auth activate-service-account --key-file="$key" --quiet
    echo "gcp-auth: service-account key (fallback; prefer Workload Identity Federation)"
else
    echo "gcp-auth: set GCP_WIF_PROVIDER and GCP_SERVICE_ACCOUNT (or, as a fallback, GCP_SA_KEY)" >&2
    exit 1
fi

gcloud config set project "$GCP_PROJECT_ID" --quiet
