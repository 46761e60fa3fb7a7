#!/usr/bin/env bash
# The GPU check in one call.
#
#   scripts/gpu-check.sh --prepare DIR    here (Rust toolchain, network): builds the folder DIR
#   scripts/gpu-check.sh DIR [OUT]        there (no toolchain, no network, maybe no Vulkan
#                                         loader; PyTorch, NumPy, scikit-learn present)
#
# DIR holds the release `smrt` binary, this script's Python half (gpu_check.py), Debian's
# libvulkan1 (with the GL dispatch libraries NVIDIA's Vulkan driver needs) and an
# imbalanced-learn wheel (about 9 MB in all). The run prints the adapters,
# `smrt bench` on the CPU engine and on the best GPU adapter (a software adapter is labelled so),
# the same workloads in PyTorch (CUDA when present) and imbalanced-learn, and one Markdown table
# of all of them; every file lands in OUT (default: DIR/out). SMRT_GPU_CHECK_QUICK=1 runs the
# workloads ten times smaller (a check of the script itself, for example on lavapipe).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)

if [[ "${1:-}" == "--prepare" ]]; then
    dir=${2:?usage: gpu-check.sh --prepare DIR}
    mkdir -p "$dir"
    (cd "$here/.." && cargo build --release --bin smrt)
    cp "$here/../target/release/smrt" "$here/gpu_check.py" "$here/gpu-check.sh" "$dir/"
    strip "$dir/smrt" 2>/dev/null || true
    # The loader, and the GL dispatch libraries NVIDIA's Vulkan driver links against.
    (cd "$dir" && rm -f ./*.deb && apt-get download libvulkan1 libglvnd0 libglx0 libegl1 libgl1)
    rm -f "$dir"/*.whl
    python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$dir" imbalanced-learn==0.14.2
    du -sh "$dir"
    exit 0
fi

dir=$(cd "${1:?usage: gpu-check.sh DIR [OUT]}" && pwd)
out=${2:-$dir/out}
mkdir -p "$out"
quick=()
[[ "${SMRT_GPU_CHECK_QUICK:-}" == 1 ]] && quick=(--quick)

# A Vulkan loader, unpacked from the folder's .deb when the system has none.
if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan.so.1'; then
    for deb in "$dir"/*.deb; do dpkg -x "$deb" /; done
    ldconfig
fi
# NVIDIA's driver mounted into a container brings its ICD file but may not register it.
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [[ -z "${VK_DRIVER_FILES:-}" && -f "$icd" ]]; then export VK_DRIVER_FILES=$icd; fi
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}

# imbalanced-learn from its wheel, when the system has none.
if ! python3 -c 'import imblearn' 2>/dev/null; then
    python3 -m pip install --quiet --no-index --no-deps --target "${TMPDIR:-/tmp}/smrt-gpu-check-site" "$dir"/*.whl
    export PYTHONPATH="${TMPDIR:-/tmp}/smrt-gpu-check-site${PYTHONPATH:+:$PYTHONPATH}"
fi

{
    echo "== machine"
    nproc
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>/dev/null || echo "no nvidia-smi"
    echo "== adapters (smrt devices)"
    "$dir/smrt" info || true
} | tee "$out/machine.txt"

"$dir/smrt" bench --backend cpu "${quick[@]}" --json "$out/smrt-cpu.json" >/dev/null
"$dir/smrt" bench --backend gpu "${quick[@]}" --json "$out/smrt-gpu.json" >/dev/null
python3 "$dir/gpu_check.py" reference "${quick[@]}" --out "$out/ref.json"
python3 "$dir/gpu_check.py" table "$out/smrt-cpu.json" "$out/smrt-gpu.json" "$out/ref.json" | tee "$out/table.md"
