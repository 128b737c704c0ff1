"""meetbot's benchmarks: voice-to-voice latency, cost per participant, capacity.

Each benchmark is one command (``python3 -m benchmarks.latency`` and so on, see
``benchmarks/README.md``) that writes JSON and a Markdown table under ``benchmarks/results/``.
"""
