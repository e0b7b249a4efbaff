#!/bin/sh
# Print the path of a Python >= 3.12 interpreter, or explain and fail.
# mitmproxy 12 requires Python 3.12+; on 3.11 pip silently installs the old mitmproxy 11.
ok() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; }
for cand in "${GREENROOM_PYTHON:-}" python3.13 python3.12 python3; do
    [ -n "$cand" ] || continue
    path=$(command -v "$cand" 2>/dev/null) || continue
    if ok "$path"; then echo "$path"; exit 0; fi
done
root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
for path in "$root"/versions/3.13*/bin/python3 "$root"/versions/3.12*/bin/python3 \
            /usr/local/bin/python3.13 /usr/local/bin/python3.12 /usr/bin/python3.13 /usr/bin/python3.12; do
    [ -x "$path" ] && ok "$path" && { echo "$path"; exit 0; }
done
echo "greenroom: no Python >= 3.12 found (mitmproxy 12 needs it)." >&2
echo "  Install one (e.g. 'pyenv install 3.12' or 'apt-get install python3.12')," >&2
echo "  or point GREENROOM_PYTHON at it: make GREENROOM_PYTHON=/path/to/python3.12 install" >&2
exit 1
