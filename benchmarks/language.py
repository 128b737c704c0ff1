"""How well meetbot understands meeting talk it was never tuned to.

    python3 -m benchmarks.language              # the frozen test split (the README's figures)
    python3 -m benchmarks.language --split dev  # 5-fold cross-validation on the dev split

Scores the language layer (meetbot/language/) on the labeled corpus
(benchmarks/corpus/README.md): intent accuracy (the predicted intents equal the labeled ones as
a multiset), precision and recall per intent, slot exact match, the false-call rate (lines
that mention the bot's name without calling it, heard as calls) and call recall. The classifier
learns from the dev split, so dev figures are cross-validated (each fold scored by a model that
never saw it); the test split is scored by the model trained on the whole dev split, the one
the bot runs.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS_DIR, machine_info, md_table
from benchmarks.report import publish

CORPUS_DIR = Path(__file__).resolve().parent / "corpus"
DEV_DIR = Path(__file__).resolve().parent.parent / "meetbot" / "language" / "corpus"

Record = dict[str, Any]
Prediction = dict[str, Any]
Predictor = Callable[[Record], Prediction]

TARGETS = {"intent_accuracy": 0.97, "slot_exact_match": 0.92, "false_call_rate": 0.005}


def load(paths: Iterable[Path]) -> list[Record]:
    records: list[Record] = []
    for path in paths:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise SystemExit(f"{path}:{n}: not JSON: {exc}") from exc
    return records


def split_files(split: str) -> list[Path]:
    folder = CORPUS_DIR if split == "test" else DEV_DIR
    files = sorted(folder.glob(f"{split}-*.jsonl"))
    if not files:
        raise SystemExit(f"no {split}-*.jsonl in {folder}")
    return files


# ------------------------------------------------------------------------------ scoring

_FILLERS = frozenset("um uh erm er like".split())
_LEADING = frozenset("the a an our my".split())


def norm_text(value: str) -> str:
    """Case, punctuation, fillers and leading articles do not count in slot comparisons."""
    toks = [t for t in re.findall(r"[a-z0-9]+(?:'[a-z]+)?", value.lower()) if t not in _FILLERS]
    while toks and toks[0] in _LEADING:
        toks = toks[1:]
    return " ".join(toks)


def same_slot(gold: Any, predicted: Any) -> bool:
    if gold is None or predicted is None:
        return gold is None and (predicted is None or predicted == [])
    if isinstance(gold, (int, float)) and not isinstance(gold, bool):
        return isinstance(predicted, (int, float)) and abs(float(gold) - float(predicted)) < 0.5
    if isinstance(gold, list):
        if not isinstance(predicted, list):
            return False
        return sorted(norm_text(str(g)) for g in gold) == sorted(
            norm_text(str(p)) for p in predicted)
    return norm_text(str(gold)) == norm_text(str(predicted))


def same_slots(gold: dict[str, Any], predicted: dict[str, Any]) -> bool:
    return all(same_slot(v, predicted.get(k)) for k, v in gold.items())


def score(records: Sequence[Record], predictions: Sequence[Prediction]) -> dict[str, Any]:
    """Every figure of the benchmark for ``predictions`` of ``records`` (same order)."""
    exact = 0
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    slot_total = slot_hits = 0
    mentions = mention_calls = calls = calls_heard = 0
    errors: list[dict[str, Any]] = []
    for rec, pred in zip(records, predictions, strict=True):
        gold_intents = Counter(a["intent"] for a in rec["acts"])
        pred_intents = Counter(a["intent"] for a in pred["acts"])
        ok = gold_intents == pred_intents
        exact += ok
        for intent in gold_intents | pred_intents:
            both = min(gold_intents[intent], pred_intents[intent])
            tp[intent] += both
            fp[intent] += pred_intents[intent] - both
            fn[intent] += gold_intents[intent] - both
        slot_ok = True
        for act in rec["acts"]:
            if not act.get("slots"):
                continue
            slot_total += 1
            if any(p["intent"] == act["intent"] and same_slots(act["slots"], p["slots"])
                   for p in pred["acts"]):
                slot_hits += 1
            else:
                slot_ok = False
        if _mentions_bot(rec) and not rec["called"]:
            mentions += 1
            mention_calls += bool(pred["called"])
        if rec["called"]:
            calls += 1
            calls_heard += bool(pred["called"])
        if not ok or not slot_ok or pred["called"] != rec["called"]:
            errors.append({"id": rec["id"], "text": rec["text"], "gold": rec["acts"],
                           "gold_called": rec["called"], "predicted": pred["acts"],
                           "predicted_called": pred["called"]})
    per_intent = {}
    for intent in sorted(tp | fp | fn):
        p_den, r_den = tp[intent] + fp[intent], tp[intent] + fn[intent]
        per_intent[intent] = {
            "precision": tp[intent] / p_den if p_den else None,
            "recall": tp[intent] / r_den if r_den else None,
            "support": r_den,
        }
    n = len(records)
    return {
        "utterances": n,
        "intent_accuracy": exact / n if n else 0.0,
        "slot_exact_match": slot_hits / slot_total if slot_total else 0.0,
        "slot_acts": slot_total,
        "false_call_rate": mention_calls / mentions if mentions else 0.0,
        "mentions": mentions,
        "call_recall": calls_heard / calls if calls else 0.0,
        "calls": calls,
        "per_intent": per_intent,
        "errors": errors,
    }


def _mentions_bot(rec: Record) -> bool:
    from meetbot.language.calling import BotName

    return BotName(rec.get("bot_name", "assistant")).occurs(rec["text"])


# ---------------------------------------------------------------------------- predictors

def layer_predictor(train: Sequence[Record]) -> Predictor:
    """meetbot's language layer with its classifier trained on ``train``."""
    from meetbot.language.intents import IntentClassifier
    from meetbot.language.reader import Reader, example_of, record_context

    classifier = IntentClassifier([example_of(r) for r in train])

    def predict(rec: Record) -> Prediction:
        reader = Reader(rec.get("bot_name", "assistant"), classifier=classifier,
                        participants=rec.get("participants", []))
        ctx = record_context(rec)
        meaning = reader.read(rec["text"], ctx)
        called = meaning.called or (ctx.bot_asked is not None and bool(meaning.acts))
        return {"called": called, "acts": [a.to_dict() for a in meaning.acts]}

    return predict


def run(records: Sequence[Record], predict: Predictor) -> tuple[list[Prediction], float]:
    started = time.perf_counter()
    predictions = [predict(r) for r in records]
    per_ms = (time.perf_counter() - started) * 1000 / max(1, len(records))
    return predictions, per_ms


def cross_validated(records: Sequence[Record], folds: int = 5
                    ) -> tuple[list[Prediction], float]:
    """Predictions for every record by a model that did not learn from it."""
    predictions: list[Prediction | None] = [None] * len(records)
    total_ms = 0.0
    for k in range(folds):
        train = [r for i, r in enumerate(records) if i % folds != k]
        held = [(i, r) for i, r in enumerate(records) if i % folds == k]
        predict = layer_predictor(train)
        preds, ms = run([r for _, r in held], predict)
        total_ms += ms * len(held)
        for (i, _), p in zip(held, preds, strict=True):
            predictions[i] = p
    return [p for p in predictions if p is not None], total_ms / max(1, len(records))


# ------------------------------------------------------------------------------ report

def markdown(result: dict[str, Any]) -> str:
    s = result["scores"]
    rows = [
        ["intent accuracy", f"{s['intent_accuracy'] * 100:.1f} %", "≥ 97 %"],
        ["slot exact match", f"{s['slot_exact_match'] * 100:.1f} % of {s['slot_acts']} acts",
         "≥ 92 %"],
        ["false calls (name mentioned, not called)",
         f"{s['false_call_rate'] * 100:.1f} % of {s['mentions']}", "≤ 0.5 %"],
        ["call recall", f"{s['call_recall'] * 100:.1f} % of {s['calls']}", "—"],
        ["time per utterance", f"{result['ms_per_utterance']:.1f} ms", "—"],
    ]
    per = [[intent, _pct(v["precision"]), _pct(v["recall"]), v["support"]]
           for intent, v in s["per_intent"].items()]
    return "\n\n".join([
        f"# Language understanding ({result['split']} split, {s['utterances']} utterances)",
        f"Approach: {result['approach']}. Machine: {result['machine']['cpu']}, "
        f"{result['machine']['time']}.",
        md_table(["figure", "measured", "target"], rows),
        "Per intent:",
        md_table(["intent", "precision", "recall", "support"], per),
    ])


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{v * 100:.0f} %"


def drop_dev_duplicates() -> int:
    """Remove from the dev split every line whose text the test split also has (independent
    writers do say "Absolutely." alike): a line learned from must never be scored. The test
    split is only read for its texts here, never changed."""
    test_texts = {norm_text(r["text"]) for r in load(split_files("test"))}
    dropped = 0
    for path in split_files("dev"):
        lines = path.read_text(encoding="utf-8").splitlines()
        kept = [ln for ln in lines if ln.strip()
                and norm_text(json.loads(ln)["text"]) not in test_texts]
        dropped += len(lines) - len(kept)
        path.write_text("".join(f"{ln}\n" for ln in kept), encoding="utf-8")
    return dropped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", choices=("test", "dev"), default="test")
    parser.add_argument("--errors", type=int, default=0,
                        help="print this many mistakes (dev split only)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    parser.add_argument("--drop-dev-duplicates", action="store_true",
                        help="remove dev lines that the test split also has, then exit")
    args = parser.parse_args(argv)
    if args.drop_dev_duplicates:
        print(f"dropped {drop_dev_duplicates()} dev lines also in the test split")
        return 0
    dev = load(split_files("dev"))
    if args.split == "dev":
        records = dev
        predictions, ms = cross_validated(records)
        approach = "language layer, 5-fold cross-validation on the dev split"
    else:
        records = load(split_files("test"))
        predictions, ms = run(records, layer_predictor(dev))
        approach = "language layer trained on the whole dev split"
    scores = score(records, predictions)
    result = {"split": args.split, "approach": approach, "ms_per_utterance": ms,
              "scores": scores, "machine": machine_info()}
    if args.split == "dev":
        for err in scores["errors"][: args.errors]:
            print(json.dumps(err, ensure_ascii=False))
    name = "language" if args.split == "test" else "language-dev"
    publish(name, {k: v for k, v in result.items()}, markdown(result), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
