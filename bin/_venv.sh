# Sourced by bin/serve, bin/test and bin/bench: make .venv/ and install the project into it.
# Re-installs only when setup.cfg or pyproject.toml changed (a stamp holds their hash).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="${PYTHON:-python3}"
extras="${LEARNPLAT_EXTRAS:-}"
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "learnplat needs Python 3.11 or newer ($PY is $("$PY" --version 2>&1))" >&2
  exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip setuptools wheel
fi
stamp="$VENV/.learnplat-installed"
# The stamp holds "<hash of setup.cfg+pyproject.toml> <extras>"; an install with the test extras
# also serves bin/serve, so alternating bin/test and bin/serve does not reinstall each time.
hash="$(cat "$ROOT/setup.cfg" "$ROOT/pyproject.toml" | sha256sum | cut -c1-16)"
read -r have_hash have_extras < "$stamp" 2>/dev/null || { have_hash=""; have_extras=""; }
if [ "$have_hash" != "$hash" ] || { [ -n "$extras" ] && [ "$have_extras" != "$extras" ]; }; then
  target="$ROOT"
  [ -n "$extras" ] && target="$ROOT[$extras]"
  "$VENV/bin/python" -m pip install --quiet -e "$target"
  echo "$hash $extras" > "$stamp"
fi
export PATH="$VENV/bin:$PATH"
