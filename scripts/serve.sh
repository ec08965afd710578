#!/usr/bin/env bash
# Install everything, install the default models, then serve on 127.0.0.1:8080 (extra args go to `kernai serve`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh

# The default models, through the gallery (gallery/index.yaml); models already installed are skipped.
# `kernai models install` takes the directory flags that `kernai serve` is given, so both use the same models dir.
DEFAULT_MODELS=(gemma-3-270m whisper-tiny.en whisper-base voice-en-us-joe-medium silero-vad)
dir_args=()
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    case "${args[i]}" in
        --models-dir|--data-dir|--config) dir_args+=("${args[i]}" "${args[i + 1]:-}"); i=$((i + 1)) ;;
        --models-dir=*|--data-dir=*|--config=*) dir_args+=("${args[i]}") ;;
    esac
done
.venv/bin/kernai models install --skip-installed "${dir_args[@]}" "${DEFAULT_MODELS[@]}"

exec .venv/bin/kernai serve "$@"
