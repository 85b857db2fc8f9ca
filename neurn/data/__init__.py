"""neurn.data: the digit domains of the NeuRN study, through one registry.

>>> from neurn import data
>>> data.list_domains()            # mnist, optdigits, *-gen, svhn, usps, mnistm, syn
>>> train = data.domain("mnist", "train")      # offline: built from packages, cached
>>> target = data.domain("svhn-gen")           # a generated SVHN-style target
>>> real = data.domain("svhn", data_dir="/data/digits")   # full scale, from disk

Every domain is a ``DigitDomain`` (a torch ``Dataset`` of (3 x 32 x 32 float image in
[0, 1], label)) with ``name``, ``source`` and ``generated`` flags.
"""
from ._cache import default_cache_dir
from .contact_sheet import contact_sheet
from .domain import DIGITS_MEAN, DIGITS_STD, IMAGE_SHAPE, DigitDomain
from .fullscale import DataFileNotFoundError
from .registry import DomainInfo, domain, domain_info, list_domains

__all__ = ["DIGITS_MEAN", "DIGITS_STD", "IMAGE_SHAPE", "DataFileNotFoundError",
           "DigitDomain", "DomainInfo", "contact_sheet", "default_cache_dir", "domain",
           "domain_info", "list_domains"]
