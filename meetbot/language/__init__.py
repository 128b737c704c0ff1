"""What an utterance means: whether the bot is called or only mentioned, which intents it
carries and their slots (items, owners, due dates, durations), resolved against the room.

The brain decides what to do about it; this package only says what was meant.
"""

from meetbot.language.calling import BotName, Call
from meetbot.language.meaning import INTENTS, Act, Context, Meaning, PendingRequest
from meetbot.language.reader import Reader

__all__ = ["INTENTS", "Act", "BotName", "Call", "Context", "Meaning", "PendingRequest", "Reader"]
