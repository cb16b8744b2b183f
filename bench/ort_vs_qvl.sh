#!/usr/bin/env bash
# ONNX Runtime vs qvl on one model folder and thread count, in one run: the same
# random prompts (prefill at each length, then decode) and synthetic images go
# through tools/ort-bench (onnxruntime-node, CPU EP) and `qvl bench`; prints the
# date, machine, commands and a ratio table (qvl / ORT: > 1 means qvl is faster;
# for vision ms the ratio is ORT ms / qvl ms, so > 1 also means qvl is faster).
#
#   bench/ort_vs_qvl.sh MODEL_DIR [-t N] [-r REPS] [--prompt-lengths 128,512]
#                       [--gen 64] [--images 448] [--qvl PATH] [--json-out FILE]
#                       [--qvl-flag FLAG]...   (extra qvl bench flags, e.g. --qvl-flag --act-bits=8)
#                       [--ort-kv-copy]        (ORT feeds present back as past instead of in place)
#
# On a --ort-fused model folder ORT updates its KV cache in place (past and present bound
# to the same buffers, as onnxruntime-genai runs it); the table says which path ran.
# Needs a Release build of qvl (default build/qvl) and tools/node_modules (tools/setup).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"

usage() { sed -n '8,12p' "$0" | sed 's/^# \{0,3\}//' >&2; exit 2; }
[ $# -ge 1 ] || usage
model="$1"; shift
threads=2 reps=3 lengths=128,512 gen=64 images=448 qvl="$here/build/qvl" json_out=""
qvl_extra=()
ort_extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    -t|--threads) threads="$2"; shift 2 ;;
    -r|--reps) reps="$2"; shift 2 ;;
    --prompt-lengths) lengths="$2"; shift 2 ;;
    --gen) gen="$2"; shift 2 ;;
    --images) images="$2"; shift 2 ;;
    --qvl) qvl="$2"; shift 2 ;;
    --json-out) json_out="$2"; shift 2 ;;
    --qvl-flag) qvl_extra+=("${2/=/ }"); shift 2 ;;
    --ort-kv-copy) ort_extra+=(--kv-copy); shift ;;
    *) echo "ort_vs_qvl.sh: unknown argument '$1'" >&2; usage ;;
  esac
done
[ -d "$model" ] || { echo "ort_vs_qvl.sh: $model: model folder not found" >&2; exit 1; }
[ -x "$qvl" ] || { echo "ort_vs_qvl.sh: $qvl: qvl executable not found (build it, or pass --qvl)" >&2; exit 1; }

ort_cmd=("$here/tools/ort-bench" "$model" --threads "$threads" -r "$reps" --prompt-lengths "$lengths"
         --gen "$gen" --images "$images" ${ort_extra[@]+"${ort_extra[@]}"})
qvl_cmd=("$qvl" bench -m "$model" -t "$threads" -r "$reps" --prompt-lengths "$lengths"
         --gen "$gen" --images "$images" --json ${qvl_extra[@]+${qvl_extra[@]}})

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "date:    $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1)" \
     "(family $(lscpu | sed -n 's/^CPU family: *//p' | head -1) model $(lscpu | sed -n 's/^Model: *//p' | head -1)), $(nproc) CPUs," \
     "$(lscpu | sed -n 's/^Core(s) per socket: *//p' | head -1) cores/socket," \
     "$(free -g | awk '/^Mem:/ {print $2}') GiB RAM"
echo "model:   $model"
echo "ort:     ${ort_cmd[*]}"
echo "qvl:     ${qvl_cmd[*]}"
"${ort_cmd[@]}" > "$tmp/ort.json"
"${qvl_cmd[@]}" > "$tmp/qvl.json"

python3 - "$tmp/ort.json" "$tmp/qvl.json" "$json_out" <<'EOF'
import json, sys
ort = json.load(open(sys.argv[1]))
qvl = json.load(open(sys.argv[2]))
rows = []
for L in qvl["prefill_tok_s"]:
    rows.append((f"prefill {L} tok (tok/s)", ort["prefill_tok_s"].get(L), qvl["prefill_tok_s"][L], False))
rows.append((f"decode {qvl['gen']} tok (tok/s)", ort["decode_tok_s"], qvl["decode_tok_s"], False))
for side in qvl.get("vision_ms", {}):
    rows.append((f"vision {side}x{side} (ms)", ort["vision_ms"].get(side), qvl["vision_ms"][side], True))
print(f"\n{'measure':28} {'ORT':>12} {'qvl':>12} {'qvl speedup':>12}")
for name, o, q, lower_better in rows:
    ratio = (o / q if lower_better else q / o) if o and q else float("nan")
    print(f"{name:28} {o:12.2f} {q:12.2f} {ratio:11.2f}x")
print(f"{'load (s)':28} {ort['load_s']:12.2f} {qvl['load_s']:12.2f}")
print(f"\nqvl: peak RSS {qvl['peak_rss_mb']:.0f} MiB, read bandwidth {qvl['bandwidth_gb_s']:.1f} GB/s, "
      f"decode {qvl['decode_bytes_per_token'] / 1e6:.1f} MB/token -> {qvl['decode_roofline_pct']:.1f}% of roofline; "
      f"build {qvl['build']['type']} {qvl['build']['compiler']} {qvl['build']['flags']} ({qvl['build']['isa']})")
print(f"ort: {ort.get('engine', 'onnxruntime')}, KV cache {ort.get('kv_cache', 'copied')}; vision ms covers the vision graph only (qvl's includes "
      f"image decode + preprocessing of the synthetic image)")
if sys.argv[3]:
    json.dump({"ort": ort, "qvl": qvl}, open(sys.argv[3], "w"), indent=1)
EOF
