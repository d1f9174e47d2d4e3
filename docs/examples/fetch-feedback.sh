#!/usr/bin/env bash
# Fetch the feedback a Tipline centre released to your agency, with gpg, curl and jq: each item
# is decrypted with your agency's key, its signature checked to be the centre's intake key, and
# saved as JSON. Remembers where it stopped, so running it again fetches only what is new.
# The worked example of README.md, runnable.
#
#   TIPLINE_URL=https://centre.example TIPLINE_TOKEN=... INTAKE_FPR=... \
#   docs/examples/fetch-feedback.sh
#
# Environment:
#   TIPLINE_URL    the centre's origin, e.g. https://centre.example (no /api/v1)
#   TIPLINE_TOKEN  your agency's API token (never put it on a command line others can see)
#   INTAKE_FPR     fingerprint of the centre's intake key, checked out of band
#   GNUPGHOME      the GnuPG home holding your agency's secret key (gpg's default if unset)
#   OUT_DIR        where each item is saved as feedback-<id>.json (default: feedback)
#   CURSOR_FILE    where the last fetched id is kept (default: $OUT_DIR/.cursor)
#
# Prints one line per new item: its id, your tip(s) it is about, the stage, the text.
# Exit status: 0 done, 1 usage, or an item not signed by INTAKE_FPR (nothing after it is
# saved; the cursor stays before it), 22 an HTTP error (its JSON body is printed).
set -euo pipefail
shopt -s inherit_errexit

: "${TIPLINE_URL:?set TIPLINE_URL, e.g. https://centre.example}"
: "${TIPLINE_TOKEN:?set TIPLINE_TOKEN to your agency API token}"
: "${INTAKE_FPR:?set INTAKE_FPR to the centre intake key fingerprint}"
OUT_DIR=${OUT_DIR:-feedback}
CURSOR_FILE=${CURSOR_FILE:-$OUT_DIR/.cursor}
base=${TIPLINE_URL%/}
command -v jq >/dev/null || { echo "fetch-feedback: jq is needed" >&2; exit 1; }

mkdir -p "$OUT_DIR"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The token goes to curl in a file only we can read, not in its argv.
(umask 077 && printf 'Authorization: Bearer %s\n' "$TIPLINE_TOKEN" >"$work/auth")

cursor=0
[[ -s $CURSOR_FILE ]] && cursor=$(<"$CURSOR_FILE")
next="$base/api/v1/feedback?cursor=$cursor"
while [[ -n $next ]]; do
    rc=0
    page=$(curl -sS --fail-with-body -H @"$work/auth" "$next") || rc=$?
    if ((rc != 0)); then
        echo "fetch-feedback: GET $next failed: ${page:-no answer}" >&2
        exit "$rc"
    fi
    count=$(jq '.feedback | length' <<<"$page")
    for ((i = 0; i < count; i++)); do
        id=$(jq -r ".feedback[$i].id" <<<"$page")
        jq -r ".feedback[$i].message" <<<"$page" >"$work/item.asc"
        # gpg verifies while it decrypts; VALIDSIG names the primary key that signed.
        gpg --batch --status-fd 3 --decrypt -o "$work/item.json" "$work/item.asc" \
            3>"$work/status" 2>"$work/gpg.log" || {
            cat "$work/gpg.log" >&2
            exit 1
        }
        if ! grep -Eq "^\[GNUPG:\] VALIDSIG .* $INTAKE_FPR\$|^\[GNUPG:\] VALIDSIG $INTAKE_FPR " "$work/status"; then
            echo "fetch-feedback: item $id is not signed by the intake key $INTAKE_FPR: not saved" >&2
            exit 1
        fi
        mv "$work/item.json" "$OUT_DIR/feedback-$id.json"
        jq -r --arg id "$id" \
            '"\($id)\t\([.tips[].tracking_number] | join(","))\t\(.stage)\t\(.text | gsub("\\s+"; " "))"' \
            "$OUT_DIR/feedback-$id.json"
        printf '%s\n' "$id" >"$CURSOR_FILE"
    done
    next=$(jq -r '.next // empty' <<<"$page")
    [[ -z $next || $next == http* ]] || next="$base$next"
done
