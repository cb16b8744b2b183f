#!/bin/sh
# exactly one stderr line that names the offending file/flag.
#   test_ort_errors.sh WORK_DIR
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${1:?usage: test_ort_errors.sh WORK_DIR}
GOLDEN="$ROOT/tests/data/qwen3vl-a"
mkdir -p "$WORK/empty"
fails=0
passes=0

# expect_error WANT_SUBSTRING CMD...: exit code 1, one stderr line containing WANT.
expect_error() {
  want=$1
  shift
  "$@" >"$WORK/out.txt" 2>"$WORK/err.txt"
  rc=$?
  lines=$(wc -l <"$WORK/err.txt")
  if [ "$rc" -eq 1 ] && [ "$lines" -eq 1 ] && grep -qF -- "$want" "$WORK/err.txt"; then
    passes=$((passes + 1))
    echo "ok: $(cat "$WORK/err.txt")"
  else
    fails=$((fails + 1))
    echo "FAIL: '$*' -> rc $rc, $lines stderr lines (want 1 containing '$want'):"
    cat "$WORK/err.txt"
  fi
}

expect_error "missing.onnx: model file not found" \
  "$ROOT/tools/ort-run" "$WORK/missing.onnx" "$WORK/empty" "$WORK/out"
expect_error "pixel_values.npy: missing input .npy" \
  "$ROOT/tools/ort-run" "$GOLDEN/onnx-torch/vision_02_image.onnx" "$WORK/empty" "$WORK/out"
expect_error "--threads" \
  "$ROOT/tools/ort-run" "$GOLDEN/onnx-torch/vision_02_image.onnx" "$WORK/empty" "$WORK/out" --threads x
printf 'not an onnx file' >"$WORK/bad.onnx"
expect_error "bad.onnx" "$ROOT/tools/ort-run" "$WORK/bad.onnx" "$WORK/empty" "$WORK/out"
expect_error "empty/config.json: not found" "$ROOT/tools/ort-generate" "$WORK/empty" -p hi --json
expect_error "nothere.png: image file not found" \
  "$ROOT/tools/ort-generate" "$GOLDEN" --image "$WORK/nothere.png" -p hi --json
expect_error "torch-export layout" "$ROOT/tools/ort-generate" "$GOLDEN/onnx-torch" -p hi --json
printf '[{"role": "bot", "content": "x"}]' >"$WORK/msgs.json"
expect_error "msgs.json: messages[0]: role" "$ROOT/tools/ort-generate" "$GOLDEN" --messages "$WORK/msgs.json" --json
expect_error "-n: expected a positive integer" "$ROOT/tools/ort-generate" "$GOLDEN" -p hi -n 0 --json

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
