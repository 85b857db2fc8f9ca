"""Stage 3, ids -> scores: token-id sequences and a ``Scoring`` in, global alignment scores
(a pair, an alignment with its traceback, the all-pairs matrix) out. Open ``aligner.py``
first; ``core.py`` drives the compiled ``_nw``, ``blocked.py`` resumable and Dask runs.
"""
