#!/usr/bin/env bash
# The wheels that benchmarks/gpu.py needs on a GPU machine that has CUDA JAX but no TensorFlow, no Keras and no
# package index (this workplace's lent GPU machine: Python 3.12, JAX with its CUDA plugin, NumPy, pandas, SciPy,
# scikit-image, OpenCV, click, pluggy, h5py, ml-dtypes, rich, absl-py, PyYAML... already there). Run it here, where
# pip reaches an index: it downloads into .whl/ (git-ignored) the pure-Python and manylinux x86-64 CPython 3.12
# wheels of what is missing there, checks their total against the 60 MiB that may travel with the working
# tree, and prints the one command to run there, from the repository root, on JAX (KERAS_BACKEND=jax), with
# shiptoolkit itself read from the checkout (PYTHONPATH, no install).
#
#   bash benchmarks/gpu_wheels.sh            # then run the printed command there, carrying .whl
#
# Missing there, so carried: keras and its namex, optree; albumentations and its albucore (simsimd,
# stringzilla), pydantic (pydantic-core, annotated-types, typing-inspection); tomli-w (shiptoolkit writes
# config.toml with it); typing-extensions (pydantic needs >= 4.16, newer than some images have). The versions
# are the ones this project's CI tests with; change one, change the pins that go with it (pydantic pins
# pydantic-core exactly).
set -euo pipefail
cd "$(dirname "$0")/.."

WHEELS=(
    keras==3.15.1 namex==0.1.0 optree==0.20.0
    albumentations==2.0.8 albucore==0.0.24 simsimd==6.5.16 stringzilla==5.3.2
    pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5
    typing-extensions==4.16.0 tomli-w==1.2.0
)
LIMIT_MIB=60
PYTHON=${PYTHON:-python3}

rm -rf .whl && mkdir .whl
# One version of each (two would stop the install there); --no-deps: each dependency is named above.
"$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl "${WHEELS[@]}"

count=$(find .whl -type f -name '*.whl' | wc -l)
if [ "$count" -ne "${#WHEELS[@]}" ]; then
    echo "gpu_wheels.sh: .whl/ holds $count wheels, ${#WHEELS[@]} were asked for" >&2
    exit 1
fi
bytes=$(cat .whl/*.whl | wc -c)
mib=$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1048576 }')
if [ "$bytes" -gt $((LIMIT_MIB * 1048576)) ]; then
    echo "gpu_wheels.sh: the wheels take $mib MiB, over the $LIMIT_MIB MiB that may travel" >&2
    exit 1
fi
echo "# $count wheels, $mib MiB in .whl/ (limit $LIMIT_MIB MiB). Carry .whl and run, from the repository root:"
echo 'python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site' \
    '.whl/*.whl && export PYTHONPATH=/tmp/site:$PWD KERAS_BACKEND=jax PYTHONUNBUFFERED=1 &&' \
    'python3 benchmarks/gpu.py --out "$OUT/gpu.txt"'
