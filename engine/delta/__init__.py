"""Delta Lake publishing of the cold tier.

``log`` writes and replays a directory's ``_delta_log`` (our own writer:
protocol 1/2, no column mapping, atomic put-if-absent commits); ``schema``
maps tables and segment statistics to Delta terms; ``publish`` derives each
scope's Delta commits from its manifest after every flush and compaction,
and at open.
"""
