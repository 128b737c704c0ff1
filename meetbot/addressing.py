"""Is this utterance meant for the bot? The turn-taking rule of a bot in a group call.

In a call with several people the bot answers only when called: its name as a vocative
("Nova, what's next?", "what did we decide, Nova?", "hey assistant ..."), not as a mention
("the Nova dashboard", "we should hire a support assistant"); the language layer
(meetbot/language/calling.py) tells the two apart, matching the name loosely as a small
speech model spells it. Where the words alone cannot tell ("Nova agenda items are ...", the
comma lost), the meaning decides: a request only the bot could act on makes it a call. In a
short follow-up window after the bot answered someone, that person's next utterance is
addressed, and after the bot asked the room a question anyone's answer is; with a reader,
only when the utterance carries something for the bot ("I think the numbers for March look
fine" right after "What's on the agenda today?" is talk between people, not an answer).
With one person in the call, every utterance is addressed.
"""

from __future__ import annotations

from dataclasses import dataclass

from meetbot.language.calling import GREETINGS, BotName
from meetbot.language.meaning import Context
from meetbot.language.reader import BOT_DIRECTED, Reader
from meetbot.language.text import words

__all__ = ["GREETINGS", "Addressing", "words"]


@dataclass
class _Window:
    speaker_id: str | None
    """None: the bot asked the room, anyone may answer."""
    until: float
    question: str | None
    """What the bot asked, when it asked something."""


class Addressing:
    """Decides ``addressed`` for each transcribed utterance; remembers follow-up windows."""

    def __init__(self, bot_name: str, wake_phrases: tuple[str, ...] = (),
                 follow_up_s: float = 8.0, reader: Reader | None = None) -> None:
        self._bot = BotName(bot_name, wake_phrases)
        self._reader = reader
        """Reads meaning where the words of a call are not enough; None: words only."""
        self._follow_up_s = follow_up_s
        self._window: _Window | None = None

    def mentions_bot(self, text: str) -> bool:
        """The bot's name (or a wake phrase) is in the text, as a call or not."""
        return self._bot.occurs(text)

    def calls_bot(self, text: str) -> bool:
        """The text calls the bot (a vocative, or a request to it where the words are
        ambiguous and a reader is there to tell)."""
        call = self._bot.read(text)
        if call.vocative:
            return True
        if call.tentative_body is not None and self._reader is not None:
            return self._reader.read(text, Context()).called
        return False

    def leading_call(self, text: str) -> str | None:
        """The words ``text`` opens with that call the bot ("Hey assistant" of "Hey
        assistant, can you ..."), as written; None if it does not open with a set-off call
        ("Can the assistant take a note?" names the bot but does not call it)."""
        return self._bot.read(text).lead

    def decide(self, speaker_id: str, text: str, people_in_call: int, now: float) -> bool:
        """Whether the bot should answer this utterance (consumes a follow-up window)."""
        addressed = self.would_address(speaker_id, text, people_in_call, now)
        window = self._window
        if addressed or (window is not None and window.speaker_id not in (None, speaker_id)
                         and words(text)):
            # Answered, or someone else took the floor: the follow-up moment has passed
            # (what the first person says next is talk in the room again).
            self._window = None
        return addressed

    def would_address(self, speaker_id: str, text: str, people_in_call: int, now: float) -> bool:
        """``decide`` without consuming anything: for a draft transcription at a pause."""
        if not words(text):
            return False
        if people_in_call <= 1 or self.calls_bot(text):
            return True
        window = self._window
        if window is None or now > window.until or window.speaker_id not in (None, speaker_id):
            return False
        if self._reader is None:
            return True
        if self._calls_someone_else(text):
            return False  # "Marco, could you ..." is for Marco
        meaning = self._reader.read(text, Context(bot_asked=window.question), guess=False)
        if window.speaker_id is None:
            # The bot asked the room: an answer to it, or something only the bot could act
            # on. A remark that merely states something ("Marketing is 10% over", said while
            # a reminder's question hangs in the air) is talk between people.
            return any(act.intent in BOT_DIRECTED for act in meaning.acts)
        return bool(meaning.acts)

    def bot_replied(self, speaker_id: str | None, reply: str, now: float) -> None:
        """Open the follow-up window after the bot finished speaking ``reply``.

        A reply ending in a question invites anyone in the room to answer; otherwise only the
        person the bot answered may follow up without naming it (nobody, after a statement the
        bot made on its own).
        """
        asked_room = reply.rstrip().endswith("?")
        if not asked_room and speaker_id is None:
            # Said on the bot's own initiative and asking nothing (or cut off): nobody is
            # expected to answer it, so nobody is heard as talking to the bot without its name.
            self._window = None
            return
        question = _last_sentence(reply) if asked_room else None
        self._window = _Window(None if asked_room else speaker_id, now + self._follow_up_s,
                               question)

    def _calls_someone_else(self, text: str) -> bool:
        """The utterance opens by calling a participant by name ("Marco, ...")."""
        if self._reader is None:
            return False
        head, comma, _ = text.partition(",")
        name = head.strip()
        for greeting in GREETINGS:
            if name.lower().startswith(greeting + " "):
                name = name[len(greeting) + 1:]
        return bool(comma) and 0 < len(name.split()) <= 2 and \
            self._reader.names.match(name) is not None

    def close_window(self) -> None:
        self._window = None


def _last_sentence(text: str) -> str:
    parts = [p for p in text.replace("!", ".").split(". ") if p.strip()]
    return parts[-1].strip() if parts else text
