"""Stage 3, ids -> scores: token-id sequences and a Scoring in, global alignment scores
(one pair, an alignment with its traceback, or the all-pairs matrix) out.
Open ``aligner.py`` first (``score``, ``align``, ``pairwise``); ``core.py`` drives the
compiled ``_nw`` kernels, ``blocked.py`` the resumable and Dask all-pairs runs.
"""
