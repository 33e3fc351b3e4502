#!/usr/bin/env bash
# The main job from a fresh Debian machine: installs missing packages, builds the
# release preset and runs ipguard's most complete end-to-end path so far (the paper's
# whole experiment comes next): check the engine on every device, train LeNet-5 on
# Fashion-MNIST (Debian's dataset-fashion-mnist), describe the saved model and evaluate
# it on the test set, extract an IPGuard fingerprint of it, and verify the model itself
# and the shipped, independently trained ResNet20 against that fingerprint. Extra
# arguments go to `ipguard train` (e.g. --epochs 10).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release
ipguard=build/release/tools/ipguard
model=build/release/lenet5-fashion-mnist.h5
"$ipguard" doctor
"$ipguard" --seed 1 train --arch lenet5 --data fashion-mnist --epochs 3 --out "$model" "$@"
"$ipguard" info "$model"
"$ipguard" eval --model "$model" --data fashion-mnist
fingerprint=build/release/lenet5-fingerprint.h5
"$ipguard" --seed 1 extract --model "$model" --out "$fingerprint"
"$ipguard" verify --fingerprint "$fingerprint" --suspect "$model"
"$ipguard" verify --fingerprint "$fingerprint" --suspect weights/resnet20-fashion-mnist.h5
