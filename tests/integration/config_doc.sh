#!/usr/bin/env bash
# config_doc.sh - docs/configuration.md is exactly what scripts/gen-config-doc.py makes from the
# binary's -help: a flag added, removed or reworded without regenerating the document fails here.
. "$(dirname "$0")/lib.bash"

gen=$IT_ROOT/scripts/gen-config-doc.py
it_log "checking docs/configuration.md against $RINGTAIL_BIN -help"
if ! python3 "$gen" --check "$RINGTAIL_BIN"; then
  # show what differs: regenerate into a copy of the tree's doc and diff
  cp -r "$IT_ROOT/docs" "$IT_TMP/docs" && mkdir -p "$IT_TMP/scripts" && cp "$gen" "$IT_TMP/scripts/"
  python3 "$IT_TMP/scripts/gen-config-doc.py" "$RINGTAIL_BIN" >/dev/null
  diff -u "$IT_ROOT/docs/configuration.md" "$IT_TMP/docs/configuration.md" | head -40
  notok "docs/configuration.md matches gen-config-doc.py (run: scripts/gen-config-doc.py $RINGTAIL_BIN)"
else
  ok "docs/configuration.md matches gen-config-doc.py"
fi

# the check itself must be able to fail: a doc with one flag's row dropped is reported stale
mkdir -p "$IT_TMP/stale/docs" "$IT_TMP/stale/scripts"
cp "$gen" "$IT_TMP/stale/scripts/"
awk 'BEGIN{d=0} /^\| `-/ && !d {d=1; next} {print}' "$IT_ROOT/docs/configuration.md" \
  >"$IT_TMP/stale/docs/configuration.md"
if python3 "$IT_TMP/stale/scripts/gen-config-doc.py" --check "$RINGTAIL_BIN"; then
  notok "a document missing a flag row is reported stale"
else
  ok "a document missing a flag row is reported stale"
fi
finish
