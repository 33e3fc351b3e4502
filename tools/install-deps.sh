#!/usr/bin/env bash
# Installs the Debian packages ipguard builds and runs with, only those missing
# (idempotent; apt-get update runs only when something must be installed).
#   tools/install-deps.sh            build, test and benchmark dependencies
#   tools/install-deps.sh --torch    also python3-torch, python3-torchvision and python3-h5py
#                                    (golden files, side-by-side comparisons, the torchvision
#                                    ONNX check; never needed by the tests)
#   tools/install-deps.sh --list     print the package names, install nothing
#                                    (tools/check-deps.sh checks the build against them)
# The CUDA toolkit, cuBLAS and cuDNN are not Debian packages here; when present under
# /usr/local/cuda the build picks them up (IPG_CUDA=AUTO).
set -euo pipefail

packages=(cmake ninja-build g++ make pkg-config
          libhdf5-dev libdnnl-dev ocl-icd-opencl-dev libgtest-dev libgmock-dev googletest libbenchmark-dev zlib1g-dev
          libcli11-dev nlohmann-json3-dev dataset-fashion-mnist
          clang libclang-rt-14-dev libomp-dev xz-utils
          libcpp-httplib-dev libonnx-dev libprotobuf-dev protobuf-compiler
          pybind11-dev python3-dev python3-numpy
          libopenmpi-dev openmpi-bin)
list=0
for arg in "$@"; do
  case "$arg" in
    --torch) packages+=(python3-torch python3-torchvision python3-h5py python3-numpy) ;;
    --list) list=1 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "install-deps.sh: unknown option '$arg' (see --help)" >&2; exit 2 ;;
  esac
done

if [ "$list" -eq 1 ]; then
  printf '%s\n' "${packages[@]}"
  exit 0
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
"${sudo_cmd[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
