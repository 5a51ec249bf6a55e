"""The docs a user can open: every page is listed in docs/index.md, every relative link between
pages resolves, and no help text or doc points to a file that is not in the repository (SPEC.md)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def test_the_index_lists_every_page_and_its_links_resolve():
    index = (DOCS / "index.md").read_text()
    for page in DOCS.glob("*.md"):
        if page.name != "index.md":
            assert f"]({page.name})" in index, page.name
    for page in DOCS.glob("*.md"):
        for target in re.findall(r"\]\(([^)#:]+\.md)(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).is_file(), f"{page.name} links to missing {target}"


def test_no_user_facing_text_points_to_the_spec():
    offenders = []
    for folder in ("aadb_toolkit", "docs", "baselines"):
        for path in (ROOT / folder).rglob("*"):
            if path.is_file() and path.suffix in (".py", ".md", ".toml") and re.search(r"\bSPEC\b", path.read_text()):
                offenders.append(str(path.relative_to(ROOT)))
    assert not offenders, offenders
