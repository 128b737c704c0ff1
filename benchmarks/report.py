"""Puts the latest results into ``benchmarks/README.md``, between its results markers.

    python3 -m benchmarks.report

Each benchmark calls this after writing to the default results directory, so the README always
shows the tables the last runs wrote (with the machine and its load), never figures typed by
hand. Running it alone refreshes the README from whatever ``benchmarks/results/*.md`` hold.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from benchmarks.common import BENCH_DIR, RESULTS_DIR, write_results

README = BENCH_DIR / "README.md"
START = "<!-- results:start (written by python3 -m benchmarks.report) -->"
END = "<!-- results:end -->"
ORDER = ("latency", "cost", "capacity")


def results_markdown(results_dir: Path = RESULTS_DIR) -> str:
    """The result tables, one section per benchmark, demoted two heading levels; other result
    files (runs saved under another ``--name``, e.g. a configuration compared with the default)
    follow."""
    parts = []
    extra = sorted(p.stem for p in results_dir.glob("*.md") if p.stem not in ORDER)
    for name in (*ORDER, *extra):
        md = results_dir / f"{name}.md"
        if not md.exists():
            parts.append(f"### {name}\n\nNot run yet: `python3 -m benchmarks.{name}`.")
            continue
        lines = md.read_text(encoding="utf-8").strip().splitlines()
        if lines and lines[0].startswith("# "):  # name the file: several may share a title
            lines[0] = f"{lines[0]} (`results/{name}.md`)"
        parts.append("\n".join("##" + line if line.startswith("#") else line
                               for line in lines))
    return "\n\n".join(parts)


def update_readme(readme: Path = README, results_dir: Path = RESULTS_DIR) -> bool:
    """Replace the text between the markers; False if the README has no markers."""
    text = readme.read_text(encoding="utf-8")
    if START not in text or END not in text:
        return False
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    readme.write_text(f"{head}{START}\n\n{results_markdown(results_dir)}\n\n{END}{tail}",
                      encoding="utf-8")
    return True


def main() -> int:
    if not update_readme():
        print(f"{README} has no results markers", file=sys.stderr)
        return 1
    print(f"updated {README}")
    return 0


def publish(name: str, result: dict[str, Any], markdown: str, out: Path) -> None:
    """Write a benchmark's JSON and Markdown, print the table, and refresh the README's
    "Latest results" when the run wrote to the default results folder."""
    json_path, md_path = write_results(name, result, markdown, out)
    print(markdown)
    print(f"\nwrote {json_path} and {md_path}")
    if out.resolve() == RESULTS_DIR.resolve():
        update_readme()


if __name__ == "__main__":
    sys.exit(main())

