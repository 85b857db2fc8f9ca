"""Stage 2, Trace -> ids: traces' token strings in, int32 id sequences over one
``Vocabulary`` plus the ``Scoring`` to align them with out.
Open ``encode.py`` first (``encode_traces``); ``vocabulary.py`` holds the family table.
"""
