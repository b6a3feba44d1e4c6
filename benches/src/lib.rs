//! Shared measurement code for the `shoji-bench` binary and the criterion benches.
#![forbid(unsafe_code)]

pub mod accounts;
pub mod auditor;
pub mod ceremony;
pub mod cluster;
pub mod history;
#[cfg(feature = "peers")]
pub mod peers;
pub mod wallet;
pub mod zk;

/// The median of `samples` (sorted in place); 0 for none.
pub fn median(samples: &mut [f64]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    samples.sort_by(|a, b| a.total_cmp(b));
    let n = samples.len();
    if n % 2 == 1 {
        samples[n / 2]
    } else {
        (samples[n / 2 - 1] + samples[n / 2]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(super::median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(super::median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(super::median(&mut []), 0.0);
    }
}
