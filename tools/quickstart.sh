#!/usr/bin/env bash
# The main job from a fresh Debian machine: installs missing packages, builds the release
# preset, checks the engine on every device, and runs the paper's evaluation (section 5)
# on the shipped zoo of the shipped LeNet-5 (weights/zoo-lenet5-fashion-mnist; no
# training): every method, parameter and mode, all 30 suspects, Tables 4, 5 and 8 on
# stdout and a results folder with report.html (about 4 minutes on 2 cores); then, on
# the shipped zoo of the shipped ResNet20 (weights/zoo-resnet20-fashion-mnist), each
# method at the paper's best parameter, mode TL (about 4 more minutes). Running it again
# reprints the tables (--resume). Extra arguments go to the LeNet-5 run of `ipguard
# experiment` (e.g. --preset full on a GPU), and the ResNet20 run is then left out.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release
ipguard=build/release/tools/ipguard
"$ipguard" doctor
"$ipguard" experiment --zoo weights/zoo-lenet5-fashion-mnist \
  --out build/release/experiment-results --resume "$@"
echo "report: build/release/experiment-results/report.html"
if [ $# -eq 0 ]; then
  "$ipguard" experiment --zoo weights/zoo-resnet20-fashion-mnist \
    --grid 'ipguard:k=10;cwl2:k=1;fgsm:eps=0.3;igsm:eps=0.03;random' --modes TL \
    --out build/release/experiment-results-resnet20 --resume
  echo "report: build/release/experiment-results-resnet20/report.html"
fi
