"""Speech-to-speech over the OpenAI Realtime protocol: the bot's client and meetbot's own server.

- :mod:`meetbot.realtime.persona` — ``RealtimePersona`` / ``attach_realtime``: the bot talks
  through a Realtime session (``--pipeline speech-to-speech``), falling back to the cascade.
- :mod:`meetbot.realtime.client` — ``RealtimeClient``: one logical session over reconnects.
- :mod:`meetbot.realtime.server` — ``add_realtime_routes`` / ``start_realtime_server``: the
  protocol served offline by Whisper, the rule brain and Piper (``/v1/realtime``).
- :mod:`meetbot.meeting.tools` — the meeting notes operations as function tools.
- :mod:`meetbot.realtime.events` — event builders, the tolerant parser, session settings.

See ``docs/realtime.md``. Nothing is imported here, so importing the package costs nothing.
"""
