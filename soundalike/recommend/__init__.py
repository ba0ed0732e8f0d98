"""Recommendations: listening history in the catalog (``listens``), ALS blended with audio similarity.

    from soundalike.recommend import recommend, recommend_ranking
    recommend(catalog, user="ana", k=20)   # [Recommendation(rank, score, track, reason, ...)]
"""

from soundalike.recommend.rank import Ranking, Recommendation, recommend, recommend_ranking

__all__ = ["Ranking", "Recommendation", "recommend", "recommend_ranking"]
