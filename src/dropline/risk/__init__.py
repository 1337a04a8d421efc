"""Returns (RMA), graded goods with serials, explainable refund-fraud signals with a review
queue, and the shop-wide append-only audit trail. See README "Returns and risk"."""
