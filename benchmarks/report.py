"""Puts the latest results into ``benchmarks/README.md`` (every table) and the project
``README.md`` (each target against its latest figure), between their results markers.

    python3 -m benchmarks.report

Each benchmark calls this after writing to the default results directory, so the READMEs always
show what the last runs wrote (with the machine and its load), never figures typed by hand.
Running it alone refreshes them from whatever ``benchmarks/results/`` holds.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from benchmarks.common import BENCH_DIR, RESULTS_DIR, write_results

README = BENCH_DIR / "README.md"
PROJECT_README = BENCH_DIR.parent / "README.md"
START = "<!-- results:start (written by python3 -m benchmarks.report) -->"
END = "<!-- results:end -->"
ORDER = ("latency", "cost", "capacity", "language")


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


def _load(results_dir: Path, name: str) -> dict[str, Any] | None:
    path = results_dir / f"{name}.json"
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _when(result: dict[str, Any]) -> str:
    m = result.get("machine", {})
    load = m.get("load_avg_at_start") or ["?"]
    return f"{m.get('time', '?')}, load {load[0]}"


def summary_markdown(results_dir: Path = RESULTS_DIR) -> str:
    """Each target of the benchmarks against its latest measured figure, one row each."""
    rows = ["| target | latest | met? | run |", "|---|---|---|---|"]
    machine = ""
    latency = _load(results_dir, "latency")
    if latency is not None:
        s = latency["summary"]["all"]
        p50, wer = s["latency_ms"]["p50"], s["wer_answered_turns"]
        rows.append(f"| voice-to-voice p50 ≤ 500 ms, local models | {p50:.0f} ms (p90 "
                    f"{s['latency_ms']['p90']:.0f}, {s['answered_turns']} turns, STT WER "
                    f"{wer * 100:.1f} %) | {'yes' if p50 <= 500 else 'no'} | {_when(latency)} |")
        machine = _machine(latency)
    cost = _load(results_dir, "cost")
    if cost is not None:
        ratio = cost["summary"]["ratios"]["bot/bare"]
        each = ", ".join(f"{r:.2f}" for r in ratio["all"])
        rows.append(f"| inbound CPU per participant ≤ 1.3× a bare aiortc receiver | "
                    f"{ratio['median']:.2f}× (repeats {each})"
                    f" | {'yes' if ratio['median'] <= 1.3 else 'no'} | {_when(cost)} |")
        machine = machine or _machine(cost)
    capacity = _load(results_dir, "capacity")
    if capacity is not None:
        one = capacity["summary"].get("1", {})
        mb = one.get("mb_per_extra_meeting_median")
        if mb is not None:
            held = ", ".join(f"{w} worker{'s' if w != '1' else ''}: "
                             f"{v['capacity_meetings_median']:.0f}"
                             for w, v in capacity["summary"].items())
            rows.append(f"| memory per extra meeting ≤ 30 MB | {mb:.1f} MB (four-person "
                        f"meetings held on time, {held}) | {'yes' if mb <= 30 else 'no'} | "
                        f"{_when(capacity)} |")
    language = _load(results_dir, "language")
    if language is not None:
        sc = language["scores"]
        met = all((sc["intent_accuracy"] >= 0.97, sc["slot_exact_match"] >= 0.92,
                   sc["false_call_rate"] <= 0.005))
        rows.append(f"| language, frozen test split: intent accuracy ≥ 97 %, slot exact match "
                    f"≥ 92 %, false calls ≤ 0.5 % | {sc['intent_accuracy'] * 100:.1f} %, "
                    f"{sc['slot_exact_match'] * 100:.1f} %, {sc['false_call_rate'] * 100:.1f} % "
                    f"({sc['utterances']} utterances) | {'yes' if met else 'no'} | "
                    f"{_when(language)} |")
    note = f"\n\nMachine: {machine}." if machine else ""
    return "\n".join(rows) + note


def _machine(result: dict[str, Any]) -> str:
    m = result.get("machine", {})
    return (f"{m.get('cpu', '?')}, {m.get('usable_cores', '?')} cores usable, "
            f"{m.get('memory_gb', '?')} GB, Python {m.get('python', '?')}")


def _replace_between_markers(readme: Path, body: str) -> bool:
    text = readme.read_text(encoding="utf-8")
    if START not in text or END not in text:
        return False
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    readme.write_text(f"{head}{START}\n\n{body}\n\n{END}{tail}", encoding="utf-8")
    return True


def update_readme(readme: Path = README, results_dir: Path = RESULTS_DIR) -> bool:
    """Replace the text between the markers of both READMEs; False if the benchmarks README
    has no markers."""
    if PROJECT_README.exists() and readme == README:
        _replace_between_markers(PROJECT_README, summary_markdown(results_dir))
    return _replace_between_markers(readme, results_markdown(results_dir))


def main() -> int:
    if not update_readme():
        print(f"{README} has no results markers", file=sys.stderr)
        return 1
    print(f"updated {README} and {PROJECT_README}")
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

