#!/usr/bin/env bash
# `pensieve info` on every corrupt GGUF: non-zero exit (not a signal), exactly one stderr line
# that names the file, nothing on stdout.
set -u
pensieve="$1"
corpus="$2"
failures=0
count=0
for f in "$corpus"/*.gguf; do
  count=$((count + 1))
  out=$("$pensieve" info "$f" 2>/tmp/pensieve_cli_err.$$)
  rc=$?
  err=$(cat /tmp/pensieve_cli_err.$$)
  lines=$(printf '%s\n' "$err" | grep -c .)
  if [ "$rc" -eq 0 ] || [ "$rc" -ge 128 ] || [ "$lines" -ne 1 ] || [ -n "$out" ] ||
     [[ "$err" != "gguf: $f: "* ]]; then
    echo "FAIL $f: exit $rc, stderr: $err"
    failures=$((failures + 1))
  fi
done
rm -f /tmp/pensieve_cli_err.$$
echo "$((count - failures)) passed, $failures failed"
[ "$failures" -eq 0 ] && [ "$count" -gt 20 ]
