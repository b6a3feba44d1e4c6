//! Discrete logarithms of small points: `a` from `a·G` for `a < 2¹⁶`, by one lookup in a table of
//! every such point, built once per process (65,536 compressed points, about 3 MiB).

use crate::{g, LIMB_BITS};
use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::Identity;
use std::collections::HashMap;
use std::sync::OnceLock;

fn table() -> &'static HashMap<[u8; 32], u16> {
    static TABLE: OnceLock<HashMap<[u8; 32], u16>> = OnceLock::new();
    TABLE.get_or_init(|| {
        // `double_and_compress_batch` compresses 2·Q for many Q with one inversion, so walk
        // Q_a = a·(G/2) and get the encodings of a·G.
        let half_g = Scalar::from(2u64).invert() * g();
        let size = 1usize << LIMB_BITS;
        let mut points = Vec::with_capacity(size);
        let mut q = RistrettoPoint::identity();
        for _ in 0..size {
            points.push(q);
            q += half_g;
        }
        RistrettoPoint::double_and_compress_batch(&points)
            .into_iter()
            .enumerate()
            .map(|(a, c)| (c.to_bytes(), a as u16))
            .collect()
    })
}

/// Builds the table now rather than on the first lookup (for benchmarks and servers that would
/// rather pay at start).
pub fn warm() {
    table();
}

/// `a` with `point = a·G`, if `a < 2¹⁶`.
pub fn small(point: &RistrettoPoint) -> Option<u16> {
    table().get(point.compress().as_bytes()).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_edge_and_refuses_outside() {
        for a in [0u64, 1, 2, 255, 256, 40_000, 65_535] {
            assert_eq!(small(&(Scalar::from(a) * g())), Some(a as u16));
        }
        assert_eq!(small(&(Scalar::from(65_536u64) * g())), None);
        assert_eq!(small(&(-Scalar::ONE * g())), None);
        assert_eq!(small(&crate::h()), None);
    }
}
