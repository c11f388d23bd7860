#!/usr/bin/env bash
# `pensieve pull` and `pensieve list` against a loopback imitation of the Hugging Face hub
# (tests/cli/fake_hub.mjs): the default file choice, a transfer cut short and resumed with a
# Range request, the token kept from the CDN, a sha256 mismatch, a missing repository, and the
# listing with its default marker.
set -u
pensieve="$1"
shared="$2"
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$tmp"' EXIT
failures=0
passed=0
check() {  # check NAME EXPECTED_RC PATTERN -- COMMAND...
  local name=$1 want_rc=$2 pattern=$3
  shift 4
  local out rc
  out=$(timeout 60 "$@" 2>&1)
  rc=$?
  if [ "$rc" -ne "$want_rc" ] || ! grep -qE -- "$pattern" <<<"$out"; then
    echo "FAIL $name: exit $rc (want $want_rc), output: ${out:0:600}"
    failures=$((failures + 1))
  else
    echo "ok   $name"
    passed=$((passed + 1))
  fi
}
expect() {  # expect NAME COMMAND...: the command (a test) succeeds
  local name=$1
  shift
  if "$@"; then
    echo "ok   $name"
    passed=$((passed + 1))
  else
    echo "FAIL $name"
    failures=$((failures + 1))
  fi
}

mkdir -p "$tmp/repo" "$tmp/models"
cp "$shared/models/TinyStories-656K-Q8_0.gguf" "$shared/models/TinyStories-656K-F16.gguf" "$tmp/repo/"
cp "$shared/models/TinyStories-656K-Q8_0.gguf" "$tmp/repo/corrupt.gguf"
node "$here/fake_hub.mjs" --dir "$tmp/repo" --log "$tmp/requests.log" --cut-first 100000 \
  >"$tmp/hub.out" &
port=""
for _ in $(seq 100); do
  port=$(grep -oE '^hub [0-9]+' "$tmp/hub.out" | grep -oE '[0-9]+')
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || { echo "FAIL the fake hub did not start"; exit 1; }

# The environment pull and list see: this hub, a token, this models directory, no default.
run=(env -u HF_ENDPOINT -u PENSIEVE_DEFAULT_MODEL PENSIEVE_HF_ENDPOINT="http://127.0.0.1:$port"
  HF_TOKEN=secret PENSIEVE_MODELS_DIR="$tmp/models")
dest="$tmp/models/test/tiny/TinyStories-656K-Q8_0.gguf"

# No file named: three GGUF files, no Q4_K_M or Q4_0, so the smallest (ties by name). The first
# transfer is cut at 100000 bytes; pull resumes it within the same run.
check pull-default 0 'taking TinyStories-656K-Q8_0.gguf' -- "${run[@]}" "$pensieve" pull test/tiny
expect pull-file-in-place cmp -s "$dest" "$shared/models/TinyStories-656K-Q8_0.gguf"
expect pull-no-part-left test ! -e "$dest.part"
expect pull-resumed-with-range grep -q 'cdn GET /cdn/TinyStories-656K-Q8_0.gguf range=bytes=100000- auth=$' "$tmp/requests.log"
expect pull-token-to-hub grep -q 'hub HEAD /test/tiny/resolve/main/TinyStories-656K-Q8_0.gguf range= auth=Bearer secret' "$tmp/requests.log"
expect pull-no-token-to-cdn bash -c "! grep -q '^cdn .*auth=Bearer' '$tmp/requests.log'"
check pull-prints-path 0 "^$dest\$" -- "${run[@]}" "$pensieve" pull test/tiny TinyStories-656K-Q8_0.gguf
check pull-again 0 'already downloaded' -- "${run[@]}" "$pensieve" pull test/tiny TinyStories-656K-Q8_0.gguf
check pull-named 0 'sha256 [0-9a-f]{64} \(verified\)' -- \
  "${run[@]}" "$pensieve" pull test/tiny TinyStories-656K-F16.gguf
check pull-sha-mismatch 1 '^pull: sha256 mismatch for corrupt.gguf: expected [0-9a-f]{64}, got [0-9a-f]{64}' -- \
  "${run[@]}" "$pensieve" pull test/tiny corrupt.gguf
expect pull-mismatch-removed test ! -e "$tmp/models/test/tiny/corrupt.gguf.part" -a ! -e "$tmp/models/test/tiny/corrupt.gguf"
check pull-missing-repo 1 "^pull: repository 'nobody/none' not found" -- "${run[@]}" "$pensieve" pull nobody/none
check pull-missing-file 1 "^pull: file 'nope.gguf' not found in test/tiny" -- \
  "${run[@]}" "$pensieve" pull test/tiny nope.gguf
check pull-bad-repo 1 "is not a repository id" -- "${run[@]}" "$pensieve" pull not-a-repo x.gguf
check pull-bad-file 1 "file name '../x.gguf'" -- "${run[@]}" "$pensieve" pull test/tiny ../x.gguf

check list-both 0 'test/tiny/TinyStories-656K-F16.gguf +1\.30 MiB +llama +F16' -- "${run[@]}" "$pensieve" list
check list-quant 0 'test/tiny/TinyStories-656K-Q8_0.gguf +732\.16 KiB +llama +Q8_0' -- "${run[@]}" "$pensieve" list
check list-no-default 0 'no default' -- "${run[@]}" "$pensieve" list
check list-default-env 0 '^\* test/tiny/TinyStories-656K-Q8_0.gguf' -- \
  "${run[@]}" PENSIEVE_DEFAULT_MODEL=TinyStories-656K-Q8_0.gguf "$pensieve" list
check list-default-flag 0 '^\* test/tiny/TinyStories-656K-F16.gguf' -- \
  "${run[@]}" "$pensieve" list --default-model test/tiny/TinyStories-656K-F16.gguf
check list-bad-default 0 "default model 'nope' is neither a model" -- \
  "${run[@]}" "$pensieve" list --default-model nope
check list-empty 0 'no models in .*; download one with `pensieve pull' -- \
  "${run[@]}" "$pensieve" list --models-dir "$tmp/empty"

echo "$passed passed, $failures failed"
[ "$failures" -eq 0 ]
