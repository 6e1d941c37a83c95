"""eokit: Earth-observation archives to deep-learning training sets and models.

A thin, flat library; modules import TensorFlow only where they need it (models, training, maps).
"""

from __future__ import annotations

__version__ = "0.1.0"
