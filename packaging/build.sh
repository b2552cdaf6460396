#!/usr/bin/env bash
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install pyinstaller
pyinstaller --noconfirm packaging/studio.spec
