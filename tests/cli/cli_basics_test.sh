#!/usr/bin/env bash
# The CLI's basic contract: --version, --help, info on a real model, errors for bad usage.
set -u
pensieve="$1"
shared="$2"
failures=0
check() {  # check NAME EXPECTED_RC PATTERN -- COMMAND...
  local name=$1 want_rc=$2 pattern=$3
  shift 4
  local out rc
  out=$("$@" 2>&1)
  rc=$?
  if [ "$rc" -ne "$want_rc" ] || ! grep -qE -- "$pattern" <<<"$out"; then
    echo "FAIL $name: exit $rc (want $want_rc), output: ${out:0:300}"
    failures=$((failures + 1))
  else
    echo "ok   $name"
  fi
}
check version 0 '^pensieve [0-9]+\.[0-9]+\.[0-9]+' -- "$pensieve" --version
check help 0 'info' -- "$pensieve" --help
check no-subcommand 106 'subcommand' -- "$pensieve"
check info-real 0 'KV cache +640 B per token' -- "$pensieve" info "$shared/models/stories260K.gguf"
check info-q8 0 'token_embd.weight +Q8_0 +\[128, 2048\]' -- \
  "$pensieve" info "$shared/models/TinyStories-656K-Q8_0.gguf"
check info-v1 1 'GGUF version 1 is obsolete' -- \
  "$pensieve" info "$shared/models/stories260K-F32-ggufv1-legacy.gguf"
check info-missing 1 'cannot open' -- "$pensieve" info /nonexistent.gguf
check tokenize-phi3 0 '^15043 3186$' -- \
  "$pensieve" tokenize -m "$shared/vocab/ggml-vocab-phi-3.gguf" --no-bos "Hello world"
check tokenize-bos 0 '^1 15043 3186$' -- \
  "$pensieve" tokenize -m "$shared/vocab/ggml-vocab-phi-3.gguf" "Hello world"
check detokenize 0 '^Hello world$' -- \
  "$pensieve" tokenize -m "$shared/vocab/ggml-vocab-phi-3.gguf" --decode "15043 3186"
check tokenize-bad-id 1 'out of range|outside|invalid' -- \
  "$pensieve" tokenize -m "$shared/vocab/ggml-vocab-phi-3.gguf" --decode "99999999"
check run-golden-260k 0 '^ Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high$' -- \
  "$pensieve" run -m "$shared/models/stories260K.gguf" -p "" -n 60 --temp 0
check run-too-long 1 'prompt is too long' -- \
  "$pensieve" run -m "$shared/models/stories260K.gguf" -c 8 -p "Once upon a time there was a big dog"
check run-bad-arch 1 "architecture '.*' is not supported \(supported: llama, qwen2, phi3\)|tensor .* is missing" -- \
  "$pensieve" run -m "$shared/vocab/ggml-vocab-gpt-2.gguf" -p "hi"
echo "$((14 - failures)) passed, $failures failed"
[ "$failures" -eq 0 ]
