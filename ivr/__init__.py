"""Crisis call-out server for hospitals: mass voice calls through Asterisk, keypad answers."""

__version__ = "0.1.0"
