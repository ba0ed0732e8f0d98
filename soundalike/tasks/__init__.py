"""The use cases, over models and a catalog: the one layer the CLI and the web app call.

- :func:`similar` / :func:`analyse` — what sounds like this (and, for an upload, its tags and where it comes from);
- :func:`identify` — which track an excerpt comes from, and where;
- :func:`tag_query` — tags of a file, or the stored tags of a catalog track;
- recommendations: :func:`soundalike.recommend.recommend_ranking`.
"""

from soundalike.tasks.identify import Identification, IdentifyMatch, identify, identify_waveform
from soundalike.tasks.similar import analyse, similar
from soundalike.tasks.tag import tag_query

__all__ = ["Identification", "IdentifyMatch", "analyse", "identify", "identify_waveform", "similar", "tag_query"]
