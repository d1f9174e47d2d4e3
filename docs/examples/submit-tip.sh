#!/usr/bin/env bash
# Send one tip to a Tipline centre with nothing but gpg and curl, attach files to it, and wait
# until the centre has accepted or rejected it. The worked example of README.md, runnable.
#
#   TIPLINE_URL=https://centre.example TIPLINE_TOKEN=... PARTNER_FPR=... INTAKE_FPR=... \
#   TIP_FILE=tip.json docs/examples/submit-tip.sh [ATTACHMENT...]
#
# Environment:
#   TIPLINE_URL      the centre's origin, e.g. https://centre.example (no /api/v1)
#   TIPLINE_TOKEN    your agency's API token (never put it on a command line others can see)
#   PARTNER_FPR      fingerprint of your agency's signing key, as registered with the centre
#   INTAKE_FPR       fingerprint of the centre's intake key, checked out of band and
#                    locally signed (gpg --quick-lsign-key INTAKE_FPR)
#   GNUPGHOME        the GnuPG home holding both keys (gpg's default if unset)
#   TIP_FILE         the tip document, JSON (default: tip.json)
#   IDEMPOTENCY_KEY  default: the tip's external_reference. Sending again with the same key
#                    returns the first receipt instead of storing a second tip.
#   POLL_TRIES, POLL_INTERVAL   how long to wait for the verdict (default: 60 tries, 1 s apart)
#
# Prints the receipt and progress on stderr and the final status JSON on stdout.
# Exit status: 0 in_triage, 1 usage or gpg error, 22 an HTTP error (its JSON body is printed),
# 3 rejected (the reason is in the status), 4 still not processed after POLL_TRIES.
set -euo pipefail
shopt -s inherit_errexit

: "${TIPLINE_URL:?set TIPLINE_URL, e.g. https://centre.example}"
: "${TIPLINE_TOKEN:?set TIPLINE_TOKEN to your agency API token}"
: "${PARTNER_FPR:?set PARTNER_FPR to your agency signing key fingerprint}"
: "${INTAKE_FPR:?set INTAKE_FPR to the centre intake key fingerprint}"
TIP_FILE=${TIP_FILE:-tip.json}
POLL_TRIES=${POLL_TRIES:-60}
POLL_INTERVAL=${POLL_INTERVAL:-1}
base=${TIPLINE_URL%/}

[[ -r $TIP_FILE ]] || { echo "submit-tip: cannot read TIP_FILE=$TIP_FILE" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The token goes to curl in a file only we can read, not in its argv.
(umask 077 && printf 'Authorization: Bearer %s\n' "$TIPLINE_TOKEN" >"$work/auth")

# A top-level string field of a JSON answer (the API's answers are flat objects).
field() {
    sed -n "s/.*\"$1\" *: *\"\\([^\"]*\\)\".*/\\1/p" <<<"$2"
}

# api METHOD URL [curl options...]: the answer on stdout; on an HTTP error, the error JSON
# on stderr and curl's exit status (22).
api() {
    local method=$1 url=$2 out rc=0
    shift 2
    out=$(curl -sS --fail-with-body -X "$method" -H @"$work/auth" "$@" "$url") || rc=$?
    if ((rc != 0)); then
        echo "submit-tip: $method $url failed: ${out:-no answer}" >&2
        return "$rc"
    fi
    printf '%s\n' "$out"
}

if [[ -z ${IDEMPOTENCY_KEY:-} ]]; then
    IDEMPOTENCY_KEY=$(sed -n 's/.*"external_reference" *: *"\([^"]*\)".*/\1/p' "$TIP_FILE" | head -n 1)
fi
idempotency=()
[[ -n $IDEMPOTENCY_KEY ]] && idempotency=(-H "Idempotency-Key: $IDEMPOTENCY_KEY")

# 1. Seal: sign with the agency key, encrypt to the intake key, armor.
gpg --batch --yes --sign --local-user "$PARTNER_FPR" \
    --encrypt --recipient "$INTAKE_FPR" --armor -o "$work/tip.json.asc" "$TIP_FILE"

# 2. Submit: 202 and a receipt.
receipt=$(api POST "$base/api/v1/tips" \
    -H "Content-Type: application/pgp-encrypted" "${idempotency[@]}" \
    --data-binary @"$work/tip.json.asc")
echo "receipt: $receipt" >&2
tip_id=$(field id "$receipt")
status_url=$(field status_url "$receipt")
[[ $status_url == http* ]] || status_url="$base$status_url"

# 3. Attachments: each file encrypted to the intake key, one request each.
for file in "$@"; do
    gpg --batch --yes --encrypt --recipient "$INTAKE_FPR" -o "$work/attachment.gpg" "$file"
    answer=$(api POST "$base/api/v1/tips/$tip_id/attachments" \
        -H "Content-Type: application/octet-stream" --data-binary @"$work/attachment.gpg")
    echo "attached $file: $answer" >&2
done

# 4. Poll until the centre has verified, decrypted and validated the tip.
for ((try = 1; try <= POLL_TRIES; try++)); do
    current=$(api GET "$status_url")
    status=$(field status "$current")
    case $status in
    received | processing) sleep "$POLL_INTERVAL" ;;
    *)
        echo "$current"
        [[ $status == in_triage ]] && exit 0
        exit 3
        ;;
    esac
done
echo "$current"
echo "submit-tip: still $status after $POLL_TRIES tries; poll $status_url later" >&2
exit 4
