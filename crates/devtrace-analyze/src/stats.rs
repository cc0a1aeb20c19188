//! Small statistics: means, percentiles, and the Mann–Whitney U test.

/// Arithmetic mean; 0 for no values.
pub fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        0.0
    } else {
        values.iter().sum::<f64>() / values.len() as f64
    }
}

/// Percentile by linear interpolation between closest ranks (`p` in 0..=100).
pub fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let rank = (p / 100.0).clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let (low, high) = (rank.floor() as usize, rank.ceil() as usize);
    sorted[low] + (sorted[high] - sorted[low]) * (rank - low as f64)
}

/// Summary of a sample.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct Summary {
    pub count: usize,
    pub mean: f64,
    pub p50: f64,
    pub p95: f64,
    pub max: f64,
}

pub fn summarize(values: &[f64]) -> Summary {
    Summary {
        count: values.len(),
        mean: mean(values),
        p50: percentile(values, 50.0),
        p95: percentile(values, 95.0),
        max: values.iter().copied().fold(0.0, f64::max),
    }
}

/// One bar of a histogram: values in `[low, high)` (the last bar includes `high`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Bin {
    pub low: f64,
    pub high: f64,
    pub count: usize,
}

/// `bins` equal-width bars from the smallest to the largest value (one bar when they are all
/// equal; none for no values).
pub fn histogram(values: &[f64], bins: usize) -> Vec<Bin> {
    let (Some(min), Some(max)) = (
        values.iter().copied().reduce(f64::min),
        values.iter().copied().reduce(f64::max),
    ) else {
        return Vec::new();
    };
    if max <= min || bins <= 1 {
        return vec![Bin {
            low: min,
            high: max,
            count: values.len(),
        }];
    }
    let width = (max - min) / bins as f64;
    let mut out: Vec<Bin> = (0..bins)
        .map(|i| Bin {
            low: min + width * i as f64,
            high: if i + 1 == bins {
                max
            } else {
                min + width * (i + 1) as f64
            },
            count: 0,
        })
        .collect();
    for value in values {
        let i = (((value - min) / width) as usize).min(bins - 1);
        out[i].count += 1;
    }
    out
}

/// Percentiles of the values that fall in one stretch of time.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct TimeBucket {
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
    pub count: usize,
    pub p50: f64,
    pub p95: f64,
    pub max: f64,
}

/// `(time, value)` points cut into at most `buckets` equal stretches of time from the first
/// point to the last; stretches without points are left out.
pub fn percentiles_over_time(points: &[(u64, f64)], buckets: usize) -> Vec<TimeBucket> {
    let (Some(first), Some(last)) = (
        points.iter().map(|p| p.0).min(),
        points.iter().map(|p| p.0).max(),
    ) else {
        return Vec::new();
    };
    let buckets = buckets.max(1) as u64;
    let width = ((last - first) / buckets).max(1) + u64::from((last - first) % buckets != 0);
    let mut groups: std::collections::BTreeMap<u64, Vec<f64>> = std::collections::BTreeMap::new();
    for (time, value) in points {
        groups
            .entry(((time - first) / width).min(buckets - 1))
            .or_default()
            .push(*value);
    }
    groups
        .into_iter()
        .map(|(i, values)| TimeBucket {
            start_unix_nano: first + i * width,
            end_unix_nano: (first + (i + 1) * width).min(last.max(first + 1)),
            count: values.len(),
            p50: percentile(&values, 50.0),
            p95: percentile(&values, 95.0),
            max: values.iter().copied().fold(0.0, f64::max),
        })
        .collect()
}

/// Result of a two-sided Mann–Whitney U test (normal approximation with tie correction).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct RankTest {
    pub u: f64,
    pub p_value: f64,
    pub n_a: usize,
    pub n_b: usize,
}

/// Tests whether `a` and `b` come from the same distribution. `None` when either sample has
/// fewer than 2 values: there is nothing to test.
pub fn mann_whitney(a: &[f64], b: &[f64]) -> Option<RankTest> {
    let (n_a, n_b) = (a.len(), b.len());
    if n_a < 2 || n_b < 2 {
        return None;
    }
    let mut all: Vec<(f64, bool)> = a
        .iter()
        .map(|v| (*v, true))
        .chain(b.iter().map(|v| (*v, false)))
        .collect();
    all.sort_by(|x, y| x.0.total_cmp(&y.0));
    // Average ranks over ties; collect tie sizes for the variance correction.
    let n = all.len();
    let mut rank_sum_a = 0.0;
    let mut tie_term = 0.0;
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        let average_rank = (i + j) as f64 / 2.0 + 1.0;
        let ties = (j - i + 1) as f64;
        tie_term += ties.powi(3) - ties;
        rank_sum_a += all[i..=j].iter().filter(|(_, in_a)| *in_a).count() as f64 * average_rank;
        i = j + 1;
    }
    let (na, nb, nf) = (n_a as f64, n_b as f64, n as f64);
    let u_a = rank_sum_a - na * (na + 1.0) / 2.0;
    let u = u_a.min(na * nb - u_a);
    let mean_u = na * nb / 2.0;
    let variance = na * nb / 12.0 * ((nf + 1.0) - tie_term / (nf * (nf - 1.0)));
    let p_value = if variance <= 0.0 {
        1.0
    } else {
        // Continuity-corrected z; two-sided.
        let z = ((u - mean_u).abs() - 0.5).max(0.0) / variance.sqrt();
        (2.0 * normal_upper_tail(z)).min(1.0)
    };
    Some(RankTest {
        u,
        p_value,
        n_a,
        n_b,
    })
}

/// P(Z > z) for a standard normal, via erfc (W. J. Cody's rational approximation, |error| < 1.2e-7).
fn normal_upper_tail(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_interpolate() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(percentile(&v, 50.0), 3.0);
        assert_eq!(percentile(&v, 95.0), 4.8);
        assert_eq!(summarize(&v).max, 5.0);
        assert_eq!(summarize(&[]).count, 0);
    }

    #[test]
    fn mann_whitney_separates_shifted_samples_and_not_equal_ones() {
        let a: Vec<f64> = (0..10).map(|i| 100.0 + i as f64).collect();
        let b: Vec<f64> = (0..10).map(|i| 50.0 + i as f64).collect();
        let test = mann_whitney(&a, &b).unwrap();
        assert_eq!(test.u, 0.0);
        assert!(test.p_value < 0.001, "{test:?}");
        let same = mann_whitney(&a, &a).unwrap();
        assert!(same.p_value > 0.9, "{same:?}");
        assert!(mann_whitney(&[1.0], &b).is_none());
    }

    #[test]
    fn normal_tail_matches_tables() {
        assert!((normal_upper_tail(1.96) - 0.025).abs() < 1e-4);
        assert!((normal_upper_tail(0.0) - 0.5).abs() < 1e-7);
    }

    #[test]
    fn histogram_spreads_values_over_equal_bins() {
        let bins = histogram(&[0.0, 1.0, 2.0, 9.0, 10.0], 5);
        let counts: Vec<usize> = bins.iter().map(|b| b.count).collect();
        assert_eq!(counts, [2, 1, 0, 0, 2]);
        assert_eq!((bins[0].low, bins[4].high), (0.0, 10.0));
        assert_eq!(histogram(&[3.0, 3.0], 10).len(), 1);
        assert!(histogram(&[], 10).is_empty());
    }

    #[test]
    fn percentiles_over_time_group_points_by_stretch() {
        let points = [(0, 1.0), (5, 3.0), (10, 10.0), (95, 7.0), (100, 9.0)];
        let series = percentiles_over_time(&points, 10);
        let summary: Vec<(u64, usize, f64)> = series
            .iter()
            .map(|b| (b.start_unix_nano, b.count, b.p50))
            .collect();
        assert_eq!(summary, [(0, 2, 2.0), (10, 1, 10.0), (90, 2, 8.0)]);
        assert!(percentiles_over_time(&[], 4).is_empty());
    }
}
