"""meetbot: a meeting bot that joins calls as a real WebRTC participant."""

__version__ = "0.1.0"
