"""neurn.data: a domain name (or an image folder) in; a torch ``Dataset`` of images, labels out.

Open :mod:`.registry` first (``domain``, ``list_domains``); the digit domains are offline
(:mod:`.offline`, :mod:`.generated`) or full scale (:mod:`.fullscale`), folders :mod:`.folder`.

>>> from neurn import data
>>> data.list_domains()            # mnist, optdigits, *-gen, svhn, usps, mnistm, syn
>>> train = data.domain("mnist", "train")      # offline: built from packages, cached
>>> target = data.domain("svhn-gen")           # a generated SVHN-style target
>>> real = data.domain("svhn", data_dir="/data/digits")   # full scale, from disk
>>> photo = data.domain("folder:/data/PACS/photo")        # any image folder
>>> pacs = data.domains_from_root("/data/PACS")           # DomainBed layout

A digit domain is a ``DigitDomain`` (a torch ``Dataset`` of (3 x 32 x 32 float image in
[0, 1], label)) with ``name``, ``source`` and ``generated`` flags; an image folder is a
``FolderDomain`` (``root/<class>/<image>``, decoded from disk, see :mod:`.folder`).
"""
from __future__ import annotations

from neurn.data._cache import default_cache_dir
from neurn.data.contact_sheet import contact_sheet
from neurn.data.domain import DIGITS_MEAN, DIGITS_STD, IMAGE_SHAPE, DigitDomain
from neurn.data.folder import BadImageError, FolderDomain, domains_from_root, shared_classes
from neurn.data.fullscale import DataFileNotFoundError
from neurn.data.registry import DomainInfo, domain, domain_info, list_domains, not_a_folder_error

__all__ = ["DIGITS_MEAN", "DIGITS_STD", "IMAGE_SHAPE", "BadImageError",
           "DataFileNotFoundError", "DigitDomain", "DomainInfo", "FolderDomain",
           "contact_sheet", "default_cache_dir", "domain", "domain_info",
           "domains_from_root", "list_domains", "not_a_folder_error", "shared_classes"]
