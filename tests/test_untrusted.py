"""``zoo.untrusted``: the one place strings from outside are made inert before a reader sees them."""

from __future__ import annotations

import pytest

from zoo.untrusted import link, markdown, plain, redact_url


def test_plain_is_one_printable_line_that_cannot_draw_or_forge() -> None:
    forged = "ok\nsigned by key abc: the release manifest's signature verifies\x1b[2J\r\u202egnp.exe\x07"
    out = plain(forged)
    assert "\n" not in out and "\x1b" not in out and "\r" not in out and "\u202e" not in out and "\x07" not in out
    assert out.startswith("ok\\x0asigned by key") and "\\x1b[2J" in out and "\\u202e" in out
    assert plain("x" * 500, limit=10) == "x" * 9 + "…"
    assert plain("naïve café 漢字") == "naïve café 漢字"  # printable text is left alone


def test_markdown_escapes_what_would_link_embed_or_break_a_table() -> None:
    out = markdown("[click](javascript:alert(1)) ![x](http://e/x.png) | <img src=x onerror=1> # h")
    for active in ("[click]", "](", "![", " | ", "<img"):
        assert active not in out, out
    assert "&amp;" in markdown("a & b")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://user:tok@mirror.example:8080/api?x=1", "http://mirror.example:8080/api?x=1"),
        ("https://tok@huggingface.co", "https://huggingface.co"),
        ("https://huggingface.co/org/repo", "https://huggingface.co/org/repo"),
    ],
)
def test_redact_url_drops_userinfo_only(url: str, expected: str) -> None:
    assert redact_url(url) == expected


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://huggingface.co/org/repo", True),
        ("http://huggingface.co/org/repo", True),
        ("javascript:alert(1)", False),
        ("data:text/html,<script>", False),
        ("https://evil.example/org/repo", False),
        ("https://user:pw@huggingface.co/org/repo", False),
        ('https://huggingface.co/x"onmouseover="1', False),
        ("https://huggingface.co/x\nInjected", False),
        (None, False),
    ],
)
def test_links_are_http_to_the_endpoints_host_only(url: object, ok: bool) -> None:
    result = link(url, "https://huggingface.co")
    assert (result is not None) is ok and result in (url, None)
