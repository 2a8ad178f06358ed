"""The README's exit-code table is the code's: regenerated from ``zoo/errors.py``, each code reachable."""

from __future__ import annotations

import re

from tests.conftest import ROOT
from zoo import errors


def test_readme_table_is_generated_from_the_error_classes() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## When something goes wrong", 1)[1].split("\n## ", 1)[0]
    table = "\n".join(line for line in section.splitlines() if line.startswith("|"))
    assert table == errors.exit_code_table(), "regenerate it: python -m zoo.errors"


def test_every_documented_code_is_raised_somewhere() -> None:
    source = "\n".join(p.read_text() for p in (ROOT / "zoo").rglob("*.py") if p.name != "errors.py")
    by_code: dict[int, set[str]] = {}
    for name, value in vars(errors).items():
        if isinstance(value, type) and issubclass(value, errors.ZooError):
            by_code.setdefault(value.exit_code, set()).add(name)
    for code, _meaning in errors.exit_codes():
        if "/" in code:  # 130 / 143: the CLI's own signal handling
            assert "sys.exit(143 if" in (ROOT / "zoo" / "cli" / "__init__.py").read_text()
            continue
        names = by_code[int(code)]
        assert any(re.search(rf"raise {n}\(|return {n}\(| {n}\(", source) for n in names), (code, names)
