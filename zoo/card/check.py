"""Where card templates are, and the one door to them: ``template_file`` maps a recipe's
``card.template`` name to a file inside the template folder and refuses anything else.

A recipe names its card template by name; whether that name is a template is a question for the card
package (templates ship inside it), so the recipe checks (``zoo validate`` and every stage that loads
a recipe) ask here, and ``render`` asks again for the folder it renders from. A name is never a path:
``../../elsewhere/evil`` once rendered a file of the user's choosing in an unsandboxed Jinja.
"""

from __future__ import annotations

import re
from pathlib import Path

from zoo.errors import CardError, did_you_mean
from zoo.untrusted import plain

# A template is named, never pathed: letters, digits, '.', '_' and '-', no '..'.
TEMPLATE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
SUFFIX = ".md.j2"


def cards_dir() -> Path:
    """The Jinja templates: ``zoo/card/templates`` links to the checkout's ``cards/`` and is a real folder
    in an installed wheel, so ``zoo card`` works outside a checkout."""
    return Path(__file__).resolve().parent / "templates"


def templates(folder: Path | None = None) -> list[str]:
    return sorted(p.name.removesuffix(SUFFIX) for p in (folder or cards_dir()).glob(f"*{SUFFIX}"))


def template_file(name: object, folder: Path | None = None) -> Path:
    """``<folder>/<name>.md.j2`` (``folder``: ``cards_dir()`` unless given), a regular file whose real path
    is inside the folder; else ``CardError`` (exit 2), one line: a name with a separator, '..' or a
    leading '/', a name with no template, or a link that leads out of the folder."""
    folder = folder or cards_dir()
    known = templates(folder)
    choose = f"set card.template to one of {', '.join(known)}"
    if not isinstance(name, str) or not TEMPLATE_NAME.fullmatch(name) or ".." in name:
        raise CardError(f"card template {plain(name, 80)!r} is not a template name (a name, not a path); fix: {choose}")
    path = folder / f"{name}{SUFFIX}"
    if not path.is_file():
        hint = did_you_mean(name, known).removeprefix("; ")
        raise CardError(f"unknown card template {name!r}; fix: {hint if hint.startswith('did you') else choose}")
    if path.resolve().parent != folder.resolve():
        raise CardError(f"card template {name!r} is a link out of {folder}; fix: replace {path} by the template itself")
    return path
