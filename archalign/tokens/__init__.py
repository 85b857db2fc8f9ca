"""Stage 2, Trace -> ids: traces' token strings in, int32 id sequences over one
``Vocabulary`` plus the ``Scoring`` to align them with out.
Open ``encode.py`` first (``encode_traces``); ``settings.py`` holds ``EncodingSettings``
and the one place keywords and presets become a setting; ``vocabulary.py`` the family
table.
"""
from __future__ import annotations

from archalign.tokens.settings import EncodingSettings

__all__ = ["EncodingSettings"]
