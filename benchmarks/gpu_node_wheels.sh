#!/usr/bin/env bash
# Wheels that a GPU node without internet lacks for benchmarks/gpu_node.py, downloaded into .whl/ here.
#
#     benchmarks/gpu_node_wheels.sh [PYTHON_VERSION ...]     # from the repo root; default: 3.10 3.11 3.12
#
# The lent H200 node has torch with CUDA, numpy, Pillow, opencv-python-headless, safetensors, fsspec, scikit-image
# and nvidia-ml-py (pynvml), Python 3.12 (/work/.library/device/KINDS.md), but not PyAV (`av`, which
# pipeline/video.py imports) nor natsort (model/files.py, the natural order of frame names). Those two
# come at the versions this checkout's Python has ($PYTHON, else .venv/bin/python, else python3), for each Python
# version asked for. OpenCV is not carried: its wheel is 64 MB, all that may travel to the node, and the node has it.
# PyAV >= 18 is an abi3 wheel (one file serves 3.11 and later) and natsort a pure-Python one; a Python without a wheel at that version
# is reported and skipped. What travels (tracked and untracked-not-ignored files, and the carried .whl) must stay
# within 64 MiB: it is added up. Last it prints the device command, which installs the wheels that fit the node's
# Python (pip --find-links picks them) and runs gpu_node.py.
set -euo pipefail

python=${PYTHON:-python3}  # the Python whose av and natsort versions are taken: this checkout's venv if it has one
[[ -z ${PYTHON:-} && -x .venv/bin/python ]] && python=.venv/bin/python
[[ -f benchmarks/gpu_node.py ]] || { echo "run this from the repo root" >&2; exit 2; }
pythons=("$@")
[[ ${#pythons[@]} -gt 0 ]] || pythons=(3.10 3.11 3.12)
packages=(av natsort)

mkdir -p .whl
git check-ignore -q .whl || echo /.whl/ >>"$(git rev-parse --git-path info/exclude)"
for package in "${packages[@]}"; do
    version=$("$python" -c "import importlib.metadata, sys; print(importlib.metadata.version(sys.argv[1]))" "$package")
    for python_version in "${pythons[@]}"; do
        if ! output=$("$python" -m pip download -q --no-deps --only-binary=:all: --python-version "$python_version" \
            --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
            --platform manylinux2014_x86_64 -d .whl "$package==$version" 2>&1); then
            echo "no wheel of $package==$version for Python $python_version, skipped: $(tail -1 <<<"$output")" >&2
        fi
    done
done

ls -l .whl
wheels=$(du -cb .whl/*.whl | tail -1 | cut -f1)
tree=$(git ls-files -z --cached --others --exclude-standard | du -cb --files0-from=- | tail -1 | cut -f1)
echo "wheels $wheels bytes + working tree $tree bytes = $((wheels + tree)) of the 67108864 (64 MiB) that may travel"
[[ $((wheels + tree)) -le 67108864 ]] || echo "OVER THE LIMIT: the call would be refused" >&2
echo
echo "device command (run with carry [\".whl\"], timeout_s 600):"
echo "python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site --find-links .whl ${packages[*]} || exit; export PYTHONPATH=/tmp/site:\$PWD; set -o pipefail; PYTHONUNBUFFERED=1 python3 benchmarks/gpu_node.py 2>&1 | tee \$OUT/gpu_node.txt"
