"""DORA Insights: DORA metrics from Git hosts and CI, narrated and delivered."""

__version__ = "0.1.0"
