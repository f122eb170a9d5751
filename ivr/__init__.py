"""Crisis call-out server for hospitals: mass voice calls through Asterisk with keypad acknowledgement."""

__version__ = "0.1.0"
