#!/usr/bin/env bash
# The GPU kit's device-side script (docs/gpu.md): run in the repository root, as ONE command of the device
# tool (kit.DEVICE_COMMAND), or here on the CPU as a dry run:
#
#   bash benchmarks/gpu/device.sh --device cuda --wheels .gpu_wheels --out "$OUT"       # on the GPU machine
#   bash benchmarks/gpu/device.sh --device cpu --venvs .venvs --out /tmp/gk --quick    # dry run here
#
# Per GPU family (kit.py families): install its carried wheels (--no-deps --no-index --no-compile) into
# a folder of its own, put that folder, the kit's shims and src/ on PYTHONPATH before the image's
# site-packages (so mace's e3nn 0.4.4 shadows the image's e3nn), check the imports, run bench.py under a
# hard timeout. Not `python3 -m venv --system-site-packages`: the image's python3 is itself a venv,
# and a venv made from a venv sees the base interpreter's site-packages, not torch.
# With --venvs DIR the family's existing environment DIR/<env> is used instead (no install).
# Writes $OUT/gpu_embed.json (every family's results + the predicted paper wall time) and $OUT/gpu_kit.log.
set -u -o pipefail
DEVICE=cuda WHEELS=.gpu_wheels VENVS="" OUT_DIR="${OUT:-/tmp/gpu_kit_out}" QUICK=0 TIMEOUT=""
PY=python3 FAMILIES=""
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE=$2; shift 2 ;;
    --wheels) WHEELS=$2; shift 2 ;;
    --venvs) VENVS=$2; shift 2 ;;
    --out) OUT_DIR=$2; shift 2 ;;
    --quick) QUICK=1; shift ;;
    --family-timeout) TIMEOUT=$2; shift 2 ;;
    --python) PY=$2; shift 2 ;;
    --families) FAMILIES=$2; shift 2 ;;
    *) echo "device.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
LOG="$OUT_DIR/gpu_kit.log"
WORK=$(mktemp -d)
exec > >(tee "$LOG") 2>&1
KIT=benchmarks/gpu
T0=$SECONDS
echo "[kit] $(date -u +%FT%TZ) device=$DEVICE wheels=$WHEELS venvs=${VENVS:-none} work=$WORK"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
$PY -c 'import sys, torch; print("[kit] python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.cuda.is_available())' || true
[ -n "$FAMILIES" ] || FAMILIES=$($PY $KIT/kit.py families) || exit 1
if [ "$QUICK" = 1 ]; then
  ARGS=(--structures 4 --repeats 1 --warmup 2 --sweep 200 1000 --sweep-copies 1 --sweep-structures 40 --cpu-check 3 --threads 2)
  : "${TIMEOUT:=300}"
else
  ARGS=(--threads 4)
fi
for fam in $FAMILIES; do
  t=${TIMEOUT:-$([ "$fam" = mace ] && echo 110 || echo 60)}
  env=$($PY -c "import sys; sys.path.insert(0, '$KIT'); import kit; print(kit.load_families().FAMILIES['$fam']['env'])")
  if [ -n "$VENVS" ]; then
    FPY="$VENVS/$env/bin/python"
    FPATH="src"
  else
    FPY=$PY
    SITE="$WORK/site/$fam"
    files=$($PY $KIT/kit.py wheels "$fam" --wheels "$WHEELS" --verify) || { echo "[kit] $fam: no wheels"; continue; }
    # shellcheck disable=SC2086
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --disable-pip-version-check \
      --target "$SITE" $files || { echo "[kit] $fam: wheel install failed"; continue; }
    FPATH="$SITE:$KIT/shims:src"
  fi
  echo "[kit] $fam: $(( SECONDS - T0 )) s; python $FPY; PYTHONPATH=$FPATH; timeout ${t} s"
  PYTHONPATH=$FPATH timeout -k 5 60 "$FPY" $KIT/bench.py --family "$fam" --check-imports || { echo "[kit] $fam: imports failed"; continue; }
  PYTHONPATH=$FPATH timeout -k 5 "$t" "$FPY" $KIT/bench.py --family "$fam" --device "$DEVICE" \
    --out "$WORK/$fam.json" "${ARGS[@]}"
  echo "[kit] $fam: exit $? after $(( SECONDS - T0 )) s"
done
CPY=$PY
[ -n "$VENVS" ] && [ -x "$VENVS/analysis/bin/python" ] && CPY="$VENVS/analysis/bin/python"
shopt -s nullglob
jsons=("$WORK"/*.json)
PYTHONPATH=src $CPY $KIT/kit.py combine "${jsons[@]}" --out "$OUT_DIR/gpu_embed.json" || {
  echo "[kit] combine failed; the families' JSON:"; cat "${jsons[@]}"; }
echo "[kit] done in $(( SECONDS - T0 )) s"
