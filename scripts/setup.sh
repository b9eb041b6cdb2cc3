#!/usr/bin/env bash
# Installs what h5z-deepcq needs on a Debian (bookworm) machine. Idempotent: a second run
# does nothing. Needs root or sudo for apt; everything else lands inside the repo.
#   - apt: HDF5 1.10 (library, tools, Fortran; serial and Open MPI builds), netCDF-C,
#     compilers, cmake, zstd, libclang (bindgen)
#   - third_party/onnxruntime/libonnxruntime.so, unpacked from the PyPI wheel
#   - third_party/venv: h5py (whose wheel bundles HDF5 2.0), netCDF4 (netCDF-C 4.9 with
#     HDF5 1.14) and numpy, for tests and examples
#   - third_party/venv-hdf5-1.12 and venv-hdf5-1.14: h5py 3.8 and 3.12, whose wheels bundle
#     HDF5 1.12 and 1.14, the releases between Debian's and the newest, for the tests
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# First, before apt: ort 2.0.0-rc.15 needs Rust 1.92 (Cargo.toml's rust-version), and
# Debian's own cargo is older.
rust_needed=1.92
if ! command -v cargo >/dev/null 2>&1 || ! command -v rustc >/dev/null 2>&1; then
  echo "setup: cargo or rustc not found: install a Rust toolchain >= $rust_needed" \
    "(rustup) first" >&2
  exit 1
fi
rust_found=$(rustc --version | awk '{print $2}')
if [ "$(printf '%s\n' "$rust_needed" "$rust_found" | sort -V | head -n1)" != "$rust_needed" ]
then
  echo "setup: rustc $rust_found is older than the $rust_needed this build needs:" \
    "rustup update stable (Debian's packaged Rust is older)" >&2
  exit 1
fi

apt_packages=(build-essential g++ gfortran cmake pkg-config libhdf5-dev hdf5-tools
  libzstd-dev libclang-dev valgrind ca-certificates
  libhdf5-openmpi-dev openmpi-bin libnetcdf-dev)
# python3 fetches the onnxruntime wheel with pip and makes the venv: minimal images have
# python3 without pip or without ensurepip.
if ! command -v python3 >/dev/null 2>&1; then
  apt_packages+=(python3 python3-pip python3-venv)
else
  python3 -m pip --version >/dev/null 2>&1 || apt_packages+=(python3-pip)
  python3 -c "import ensurepip, venv" >/dev/null 2>&1 || apt_packages+=(python3-venv)
fi

missing=()
for p in "${apt_packages[@]}"; do
  # Installed, not merely known: a package removed but not purged keeps a dpkg record.
  [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) == "install ok installed" ]] ||
    missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
      echo "setup: apt must install ${missing[*]}: run this as root, or install sudo" >&2
      exit 1
    fi
    sudo=sudo
  fi
  $sudo apt-get update -qq
  # Through env: sudo resets the environment, and a debconf question would hang unseen.
  $sudo env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# onnxruntime: the wheel is a zip; only the shared library is needed.
ort_version=1.31.1
ort_dir="$root/third_party/onnxruntime"
if [ ! -f "$ort_dir/libonnxruntime.so" ]; then
  echo "setup: fetching onnxruntime $ort_version"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  case "$(uname -m)" in
    x86_64 | aarch64) platform="manylinux_2_28_$(uname -m)" ;;
    *)
      echo "setup: onnxruntime publishes Linux wheels for x86_64 and aarch64 only, not" \
        "$(uname -m): put a libonnxruntime.so $ort_version at $ort_dir" >&2
      exit 1
      ;;
  esac
  python3 -m pip download --quiet --disable-pip-version-check --no-deps \
    --only-binary=:all: --platform "$platform" --python-version 3.11 \
    "onnxruntime==$ort_version" -d "$tmp"
  mkdir -p "$ort_dir"
  python3 - "$tmp" "$ort_dir" "$ort_version" <<'PY'
import glob, os, sys, zipfile
tmp, dest, version = sys.argv[1:]
wheel = glob.glob(os.path.join(tmp, "onnxruntime-*.whl"))[0]
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if n.endswith(f"capi/libonnxruntime.so.{version}"))
    with z.open(name) as src, open(os.path.join(dest, "libonnxruntime.so.tmp"), "wb") as out:
        out.write(src.read())
os.replace(os.path.join(dest, "libonnxruntime.so.tmp"), os.path.join(dest, "libonnxruntime.so"))
PY
fi
# The plugin folder finds onnxruntime beside the plugin. The link is made here, not kept in
# the repository: HDF5 stops scanning a plugin folder at an entry it cannot stat, so a
# link to a third_party/ that was never filled hid the filter itself (reads failed).
ln -sfn ../third_party/onnxruntime/libonnxruntime.so "$root/plugin/libonnxruntime.so"
venv="$root/third_party/venv"
if ! "$venv/bin/python" -c "import h5py, netCDF4, numpy, hdf5plugin" >/dev/null 2>&1; then
  echo "setup: filling $venv with h5py, netCDF4, hdf5plugin and numpy"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "h5py==3.16.0" "netCDF4==1.7.4" \
    "hdf5plugin==7.1.0" numpy
fi
# h5py releases whose wheels bundle HDF5 1.12 and 1.14, which HPC centres still run; each
# pin names the newest Python 3.x it has wheels for (h5py 3.8, the last to bundle 1.12,
# stops at 3.11). A newer Python leaves that release untested: the reason goes into
# venv-hdf5-<release>.untested, which the test prints instead of failing.
python_minor=$(python3 -c 'import sys; print(sys.version_info[1])')
for pinned in "1.12 11 h5py==3.8.0 numpy<2" "1.14 13 h5py==3.12.1 numpy<2.3"; do
  read -r release newest packages <<<"$pinned"
  older="$root/third_party/venv-hdf5-$release"
  if [ "$python_minor" -gt "$newest" ]; then
    reason="no h5py wheel bundles HDF5 $release for Python 3.$python_minor"
    echo "setup: $reason: not tested here"
    echo "$reason" >"$older.untested"
    continue
  fi
  rm -f "$older.untested"
  if ! "$older/bin/python" -c "import h5py, numpy" >/dev/null 2>&1; then
    echo "setup: filling $older with $packages (HDF5 $release)"
    [ -x "$older/bin/python" ] || python3 -m venv "$older"
    # shellcheck disable=SC2086  # two requirements, split on purpose
    "$older/bin/pip" install --quiet --disable-pip-version-check --only-binary=:all: $packages
  fi
done
echo "setup: ok (onnxruntime at $ort_dir/libonnxruntime.so, h5py in $venv)"
