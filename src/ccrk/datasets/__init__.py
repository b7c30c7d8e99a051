"""The paper's real benchmarks: download registry, upstream parsers, manifest preparation.

One module a dataset family, each turning the upstream files into
:class:`ccrk.data.manifest.Record` lists: :mod:`.xflickrco`, :mod:`.multi30k`,
:mod:`.flickr30k`, :mod:`.wit`, :mod:`.mscoco` (with :mod:`.karpathy`).
:mod:`.http` holds the resumable downloader, :mod:`.sources` the source
registry and :mod:`.download` what ``ccrk download`` does with them;
:mod:`.prepare` writes the manifests, :mod:`.cli` adds ``ccrk download`` and
``ccrk prepare``.

Image roots: every manifest's ``image`` is relative to the **data root**
(``--root``, ``data/`` by default), which therefore is the ``image_root`` to
give :func:`~ccrk.data.manifest.read_manifest`:

=============  ==============================================================
dataset        ``image`` values
=============  ==============================================================
xflickrco      ``flickr30k/images/<id>.jpg`` and
               ``mscoco/images/val2014/COCO_val2014_<12 digits>.jpg``
flickr30k      ``flickr30k/images/<id>.jpg``
multi30k       ``flickr30k/images/<id>.jpg``
mscoco         ``mscoco/images/{train2014,val2014}/COCO_<split>2014_<12 digits>.jpg``
wit            ``wit/images/<id[:2]>/<id>.jpg`` (id = SHA-1 prefix of the URL)
=============  ==============================================================
"""
from ccrk.datasets._io import COCO_IMAGES, FLICKR30K_IMAGES, WIT_IMAGES, AnnotationError, Prepared

__all__ = ["AnnotationError", "COCO_IMAGES", "FLICKR30K_IMAGES", "Prepared", "WIT_IMAGES"]
