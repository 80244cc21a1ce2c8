"""Refresh the generated parts of a report page: every block between `<!-- begin FILE -->` and
`<!-- end FILE -->` is replaced by FILE's current text (FILE relative to this folder), so the
page's tables are always bench.report's output and the prose around them stays hand-written.

    python reports/table1/include.py reports/table1.md
"""
import re
import sys
from pathlib import Path

HERE = Path(__file__).parent
BLOCK = re.compile(r"(<!-- begin (\S+) -->\n).*?(<!-- end \2 -->)", re.S)


def refresh(page: Path) -> int:
    text = page.read_text()
    missing = [name for name in BLOCK.findall(text) if not (HERE / name[1]).exists()]
    if missing:
        sys.exit(f"{page}: no {', '.join(m[1] for m in missing)} under {HERE} (run summarize.sh first)")
    new, count = BLOCK.subn(lambda m: m.group(1) + (HERE / m.group(2)).read_text().rstrip("\n") + "\n" + m.group(3), text)
    page.write_text(new)
    return count


if __name__ == "__main__":
    for name in sys.argv[1:]:
        print(f"{name}: {refresh(Path(name))} generated block(s) refreshed")
