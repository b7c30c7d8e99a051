"""The pre-training corpus: Conceptual Captions fetched as webdataset shards, translated into K languages.

``ccrk corpus`` runs img2dataset on the Conceptual Captions URL list,
``ccrk translate`` writes each shard's captions in K languages with M2M100
(sidecar files the shard readers in :mod:`ccrk.data.shards` pick up), and
``ccrk shards`` writes any manifest (the embedded benchmark included) in the
same shard layout, so both data paths of pre-training are exercised.
"""
