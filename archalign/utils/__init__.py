"""Helpers both packages use: atomic and verified files (:mod:`~archalign.utils.io`),
command-line pieces and the CLIs' error boundary (:mod:`~archalign.utils.args`), the
error types a user can fix (:mod:`~archalign.utils.errors`) and Dask clients
(:mod:`~archalign.utils.dask`).

Nothing here imports the aligner or torch, so ``neurn`` can use these without loading
archalign's compiled core.
"""
