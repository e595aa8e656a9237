"""How good the ships are: the competition metric and everything that reports it.

`competition` is the one implementation of the competition's F2 (averaged over IoU thresholds
0.50..0.95, per image, then over images); `submission` scores a submission CSV against a truth
CSV with it; `metrics` registers the metric components (training and evaluation); `evaluate`
predicts held-out images and scores them, always beside the all-empty baseline.
"""

from shiptoolkit.scoring.submission import ScoreResult, score_submission

__all__ = ["ScoreResult", "score_submission"]
