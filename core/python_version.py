"""Refuse a too-old Python in one line, before an import or a syntax error can say it worse.

Imported first by bot.py, for its side effect. Keep this file (and bot.py's lines before the
import) valid on old Pythons: no syntax newer than 3.6 here.
"""

import sys

MINIMUM = (3, 11)

if sys.version_info < MINIMUM:
    found = sys.version_info
    sys.exit(
        f"bot: Python {MINIMUM[0]}.{MINIMUM[1]} or newer is needed; this is Python"
        f" {found[0]}.{found[1]} ({sys.executable}). Install a newer Python and make the"
        " virtualenv with it (see README.md, Requirements)."
    )
