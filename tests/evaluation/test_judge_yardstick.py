"""The mnist5k judge as a yardstick (issue 16, metric hygiene): right on held-out digits, no feature
dimension dead, and confidence not capped below what the quality targets ask for."""

from difflab.data import load_dataset


def test_judge_is_accurate_confident_and_has_no_dead_features(mnist_judge):
    test = load_dataset("mnist5k", split="test")
    probs = mnist_judge.probabilities(test.images)
    assert (probs.argmax(1) == test.labels).float().mean() >= 0.98
    assert abs(mnist_judge.accuracy - float((probs.argmax(1) == test.labels).float().mean())) < 1e-6
    # label smoothing 0.05 (judge v2) made 0.955 the most confidence training could teach it: real held-out
    # digits scored 0.935, so "samples >= 0.95 confident" was a target above the yardstick's own ceiling
    assert probs.max(1).values.mean() > 0.96
    features = mnist_judge.features(test.images)  # (500, 128): FD, KID and precision/recall live here
    assert (features.std(0) > 1e-6).all(), "a feature dimension is constant over real digits (dead unit)"
