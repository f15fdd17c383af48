#!/usr/bin/env bash
# floatfmt_go.sh - common/floatfmt.c prints what Go prints.
#
# tests/common/floatfmt_prog generates edge values (powers of two and ten with their neighbours,
# denormals, DBL_MAX, NaN, ±Inf, 2^53) and RT_FLOATFMT_N (default 200000) random bit patterns and
# random decimals; Go's strconv.FormatFloat(v, 'e'|'f'|'g', -1, 64) and Prometheus' JSON layout
# (tests/common/floatfmt_go/main.go) format the same values; every line must be equal. Skipped
# where Go is not installed (it needs only the standard library: no network).
source "$(dirname "$0")/lib.bash"

command -v go >/dev/null || skip "go is not installed"
PROG=$(dirname "$RINGTAIL_BIN")/floatfmt_prog
[ -x "$PROG" ] || { notok "floatfmt_prog is built ($PROG)"; finish; }
n=${RT_FLOATFMT_N:-200000}

it_log "building the Go reference"
(cd "$IT_ROOT/tests/common/floatfmt_go" && GOFLAGS=-mod=mod GO111MODULE=off go build -o "$IT_TMP/floatfmt_go" main.go) \
  >"$IT_TMP/go.log" 2>&1
check "the Go reference builds" [ -x "$IT_TMP/floatfmt_go" ] || { cat "$IT_TMP/go.log"; finish; }

"$PROG" gen "$n" 12 >"$IT_TMP/values"
check "values generated" [ -s "$IT_TMP/values" ]
"$PROG" fmt <"$IT_TMP/values" >"$IT_TMP/ringtail.out"
"$IT_TMP/floatfmt_go" <"$IT_TMP/values" >"$IT_TMP/go.out"
lines=$(wc -l <"$IT_TMP/values")
check "Ringtail formats $lines values" [ "$(wc -l <"$IT_TMP/ringtail.out")" = "$lines" ]
check "Go formats $lines values" [ "$(wc -l <"$IT_TMP/go.out")" = "$lines" ]
if cmp -s "$IT_TMP/ringtail.out" "$IT_TMP/go.out"; then
  ok "'e', 'f', 'g' and JSON forms equal Go's for all $lines values"
else
  notok "'e', 'f', 'g' and JSON forms equal Go's for all $lines values"
  paste -d '\n' "$IT_TMP/values" "$IT_TMP/ringtail.out" "$IT_TMP/go.out" | awk 'NR%3==1{v=$0} NR%3==2{r=$0} NR%3==0 && r!=$0 {print v; print "  ringtail: " substr(r,1,200); print "  go:       " substr($0,1,200); if (++k == 5) exit}'
fi
finish
