"""The meeting notes operations as function tools (Realtime sessions and the LLM brain).

A realtime model keeps the meeting notes by calling these tools; the bot runs each call against
the notes it owns (:func:`run_tool`) and sends the result back into the session. The tools are
the notes' own operations (``meetbot/meeting/notes.py``), one tool per op, so a model's call
and the rule brain's action land in the notes as the same :class:`NoteChange` and the notes
look the same whichever pipeline took them.

meetbot's offline Realtime server goes the other way (:func:`change_to_call`): its rule brain
changes a private copy of the notes, and each change becomes the tool call that makes the same
change on the bot's notes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from meetbot.meeting.notes import MeetingNotes, NoteChange, NotesError

log = logging.getLogger(__name__)

JsonObject = dict[str, Any]

_STR: Final = {"type": "string"}
_OPT_STR: Final = {"type": ["string", "null"]}


def _tool(name: str, description: str, properties: JsonObject | None = None,
          required: tuple[str, ...] = ()) -> JsonObject:
    return {
        "type": "function",
        "name": name,
        "description": description,
        "parameters": {
            "type": "object",
            "properties": properties or {},
            "required": list(required),
            "additionalProperties": False,
        },
    }


NOTES_TOOLS: Final[tuple[JsonObject, ...]] = (
    _tool("get_notes", "Read the meeting notes: agenda with status and timeboxes, open and "
          "done action items, decisions. Use it to answer questions about the meeting."),
    _tool("set_title", "Set the meeting's title.", {"title": _STR}, ("title",)),
    _tool("add_agenda_items", "Append items to the agenda, in order. Titles already on the "
          "agenda are skipped.",
          {"titles": {"type": "array", "items": _STR},
           "timeboxes_s": {"type": ["array", "null"], "items": {"type": ["number", "null"]},
                           "description": "one timebox in seconds per title (null: none)"}},
          ("titles",)),
    _tool("start_item", "Make an agenda item the active one (by id or title words); the "
          "previously active item is closed.", {"ref": _STR}, ("ref",)),
    _tool("next_item", "Close the active agenda item and start the next pending one."),
    _tool("previous_item", "Go back to the agenda item before the active one."),
    _tool("set_timebox", "Set (or clear with null) the timebox of an agenda item, the active one "
          "unless ref names another.",
          {"timebox_s": {"type": ["number", "null"]}, "ref": _OPT_STR}, ("timebox_s",)),
    _tool("add_action_item", "Record an action item: what is to be done, by whom, by when.",
          {"text": _STR, "owner": _STR, "due_text": _OPT_STR,
           "due_date": {"type": ["string", "null"], "description": "YYYY-MM-DD if known"},
           "source": {"type": "string", "description": "the words it was taken from"},
           "speaker": {"type": "string", "description": "who said it"}},
          ("text",)),
    _tool("complete_action_item", "Mark an action item done (by id or words of its text).",
          {"ref": _STR}, ("ref",)),
    _tool("add_decision", "Record a decision the meeting made.",
          {"text": _STR, "speaker": _STR}, ("text",)),
    _tool("add_note", "Record a note worth keeping that is neither an action item nor a "
          "decision.", {"text": _STR, "speaker": _STR}, ("text",)),
)
TOOL_NAMES: Final = frozenset(str(t["name"]) for t in NOTES_TOOLS)


@dataclass(frozen=True)
class ToolResult:
    """What a tool call did: the JSON ``output`` sent back into the session, and the change."""

    output: str
    ok: bool
    change: NoteChange | None = None


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: JsonObject

    @property
    def arguments_json(self) -> str:
        return json.dumps(self.arguments, ensure_ascii=False, separators=(",", ":"))


class _BadArguments(ValueError):
    pass


def run_tool(notes: MeetingNotes, name: str, arguments: str, *, speaker: str = "",
             wall_time: float | None = None) -> ToolResult:
    """Run one tool call on ``notes``; never raises.

    A model's mistakes (an unknown tool, arguments that are not JSON, an item that does not
    exist) come back as ``{"ok": false, "error": ...}`` so the model can correct itself; the
    meeting goes on either way. ``speaker`` fills in who said it when the model did not.
    """
    handler = _HANDLERS.get(name)
    if handler is None:
        return _failed(f"unknown tool {name!r}; the tools are: {', '.join(sorted(TOOL_NAMES))}")
    try:
        args = json.loads(arguments) if arguments.strip() else {}
    except (ValueError, RecursionError) as exc:
        return _failed(f"arguments are not valid JSON: {exc}")
    if not isinstance(args, dict):
        return _failed("arguments must be a JSON object")
    try:
        result = handler(notes, args, speaker, wall_time)
    except (NotesError, _BadArguments) as exc:
        return _failed(str(exc))
    except (ValueError, TypeError) as exc:  # a malformed value deeper in the notes model
        log.info("tool %s refused: %s", name, exc)
        return _failed(f"bad arguments: {exc}")
    if isinstance(result, NoteChange):
        return ToolResult(_dumps({"ok": True, "change": result.to_dict()}), True, result)
    return ToolResult(_dumps({"ok": True, **result}), True)


def _failed(message: str) -> ToolResult:
    return ToolResult(_dumps({"ok": False, "error": message}), False)


def _dumps(value: JsonObject) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _s(args: JsonObject, key: str, default: str | None = None) -> str:
    value = args.get(key, default)
    if value is None and default is not None:
        return default
    if not isinstance(value, str):
        raise _BadArguments(f"{key!r} must be a string")
    return value


def _opt_s(args: JsonObject, key: str) -> str | None:
    value = args.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _BadArguments(f"{key!r} must be a string or null")
    return value


def _opt_num(value: object, key: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _BadArguments(f"{key!r} must be a number or null")
    return float(value)


Handler = Callable[[MeetingNotes, JsonObject, str, float | None], "NoteChange | JsonObject"]


def _get_notes(n: MeetingNotes, a: JsonObject, sp: str, wt: float | None) -> JsonObject:
    full = n.to_dict(transcript_limit=0)
    return {"notes": {k: full[k] for k in ("title", "agenda", "action_items", "decisions",
                                           "notes")}}


def _add_agenda_items(n: MeetingNotes, a: JsonObject, sp: str, wt: float | None) -> NoteChange:
    titles = a.get("titles")
    if not isinstance(titles, list) or not all(isinstance(t, str) for t in titles):
        raise _BadArguments("'titles' must be a list of strings")
    boxes = a.get("timeboxes_s")
    if boxes is not None:
        if not isinstance(boxes, list):
            raise _BadArguments("'timeboxes_s' must be a list (or null)")
        return n.add_agenda_items(titles, [_opt_num(b, "timeboxes_s") for b in boxes])
    return n.add_agenda_items(titles)


def _add_action_item(n: MeetingNotes, a: JsonObject, sp: str, wt: float | None) -> NoteChange:
    return n.add_action_item(
        _s(a, "text"), _s(a, "owner", ""), due_text=_opt_s(a, "due_text"),
        due_date=_opt_s(a, "due_date"), source=_s(a, "source", ""),
        speaker=_s(a, "speaker", "") or sp, wall_time=wt,
    )


_HANDLERS: Final[dict[str, Handler]] = {
    "get_notes": _get_notes,
    "set_title": lambda n, a, sp, wt: n.set_title(_s(a, "title")),
    "add_agenda_items": _add_agenda_items,
    "start_item": lambda n, a, sp, wt: n.start_item(_s(a, "ref"), wt),
    "next_item": lambda n, a, sp, wt: n.next_item(wt),
    "previous_item": lambda n, a, sp, wt: n.previous_item(wt),
    "set_timebox": lambda n, a, sp, wt: n.set_timebox(
        _opt_num(a.get("timebox_s"), "timebox_s"), _opt_s(a, "ref")
    ),
    "add_action_item": _add_action_item,
    "complete_action_item": lambda n, a, sp, wt: n.complete_action_item(_s(a, "ref"), wt),
    "add_decision": lambda n, a, sp, wt: n.add_decision(
        _s(a, "text"), _s(a, "speaker", "") or sp, wt
    ),
    "add_note": lambda n, a, sp, wt: n.add_note(_s(a, "text"), _s(a, "speaker", "") or sp, wt),
}


def change_to_call(change: NoteChange) -> ToolCall | None:
    """The tool call that makes ``change`` on notes in the same state, or None.

    Transcript lines are not tool calls (the bot writes the transcript from what it hears) and
    neither is ``create``. Ids in the change (``item-2``) are passed as refs, which resolve to
    the same item on notes that have seen the same operations.
    """
    p = change.payload
    match change.op:
        case "set_title":
            return ToolCall("set_title", {"title": p["title"]})
        case "add_agenda_items":
            items = p.get("items", [])
            if not items:
                return None
            args: JsonObject = {"titles": [i["title"] for i in items]}
            if any(i.get("timebox_s") is not None for i in items):
                args["timeboxes_s"] = [i.get("timebox_s") for i in items]
            return ToolCall("add_agenda_items", args)
        case "start_item":
            return ToolCall("start_item", {"ref": p["id"]})
        case "next_item":
            return ToolCall("next_item", {})
        case "previous_item":
            return ToolCall("previous_item", {})
        case "set_timebox":
            return ToolCall("set_timebox", {"timebox_s": p.get("timebox_s"), "ref": p["id"]})
        case "add_action_item":
            return ToolCall("add_action_item", {
                k: p.get(k) for k in ("text", "owner", "due_text", "due_date", "source",
                                      "speaker")
                if p.get(k) is not None
            })
        case "complete_action_item":
            return ToolCall("complete_action_item", {"ref": p["id"]})
        case "add_decision" | "add_note":
            return ToolCall(change.op, {"text": p["text"], "speaker": p.get("speaker", "")})
        case _:
            return None
