"""luodi (落地): BERT-family models in production for a Chinese voice assistant."""

__version__ = "0.1.0"
