"""When a warm-up has levelled off."""

from bench import measure


def test_a_rate_that_still_climbs_has_not_levelled_off():
    assert not measure.levelled_off([100, 200, 400, 800, 1600])
    assert not measure.levelled_off([1000, 1000, 1000])  # too few slices to tell
    assert not measure.levelled_off([500, 900, 1000, 1020, 1100])  # +10 %: climbing


def test_a_rate_that_only_jitters_has_levelled_off():
    assert measure.levelled_off([300, 900, 1000, 980, 1030, 990])
    assert measure.levelled_off([1000, 800, 950, 1020])  # noise after the peak
