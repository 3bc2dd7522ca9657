"""dialogue-monitor: polls Arabic news feeds and flags articles about Kuwait's strategic
dialogues with the United States and the United Kingdom."""

__version__ = "0.1.0"
