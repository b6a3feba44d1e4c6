//! Strict byte encodings of field elements and curve points.
//!
//! Every encoding has one exact length and one canonical form: a field element is 32
//! little-endian bytes below the modulus; a Jubjub point is its 32-byte compressed form and must
//! lie on the curve and in the prime-order subgroup. Anything else is an [`EncodingError`].

use crate::Fr;
use ark_ed_on_bls12_381::EdwardsAffine;
use ark_serialize::{CanonicalDeserialize, CanonicalSerialize, Compress, Validate};

/// Length of an encoded field element.
pub const FR_BYTES: usize = 32;
/// Length of an encoded Jubjub point.
pub const POINT_BYTES: usize = 32;

/// Why bytes were refused.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodingError {
    /// The input had the wrong length.
    #[error("{what}: expected {expected} bytes, got {got}")]
    Length {
        /// What was being decoded.
        what: &'static str,
        /// The exact length required.
        expected: usize,
        /// The length given.
        got: usize,
    },
    /// A field element was not below the modulus.
    #[error("{0}: not a canonical field element")]
    NonCanonicalField(&'static str),
    /// A point was not on the curve or not in the prime-order subgroup.
    #[error("{0}: not a valid point of the prime-order subgroup")]
    InvalidPoint(&'static str),
    /// A version or kind byte was not one we know.
    #[error("{what}: unknown value {value}")]
    Unknown {
        /// What was being decoded.
        what: &'static str,
        /// The value found.
        value: u64,
    },
    /// Bytes were left over after a complete encoding.
    #[error("{0}: trailing bytes after the encoding")]
    Trailing(&'static str),
    /// Some other field was out of its allowed range.
    #[error("{0}")]
    Invalid(&'static str),
}

/// The 32-byte little-endian encoding of `x`.
pub fn fr_to_bytes(x: &Fr) -> [u8; FR_BYTES] {
    let mut out = [0u8; FR_BYTES];
    // Serializing a field element into a 32-byte buffer cannot fail.
    x.serialize_compressed(&mut out[..])
        .expect("field element is 32 bytes");
    out
}

/// Decodes a field element, refusing non-canonical encodings.
pub fn fr_from_bytes(what: &'static str, bytes: &[u8]) -> Result<Fr, EncodingError> {
    if bytes.len() != FR_BYTES {
        return Err(EncodingError::Length {
            what,
            expected: FR_BYTES,
            got: bytes.len(),
        });
    }
    Fr::deserialize_with_mode(bytes, Compress::Yes, Validate::Yes)
        .map_err(|_| EncodingError::NonCanonicalField(what))
}

/// Lower-case hex of the field element's encoding.
pub fn fr_to_hex(x: &Fr) -> String {
    hex_encode(&fr_to_bytes(x))
}

/// The compressed encoding of a Jubjub point.
pub fn point_to_bytes(p: &EdwardsAffine) -> [u8; POINT_BYTES] {
    let mut out = [0u8; POINT_BYTES];
    p.serialize_compressed(&mut out[..])
        .expect("compressed Jubjub point is 32 bytes");
    out
}

/// Decodes a compressed Jubjub point, checking it is on the curve and in the prime-order subgroup.
pub fn point_from_bytes(what: &'static str, bytes: &[u8]) -> Result<EdwardsAffine, EncodingError> {
    if bytes.len() != POINT_BYTES {
        return Err(EncodingError::Length {
            what,
            expected: POINT_BYTES,
            got: bytes.len(),
        });
    }
    EdwardsAffine::deserialize_with_mode(bytes, Compress::Yes, Validate::Yes)
        .map_err(|_| EncodingError::InvalidPoint(what))
}

/// Lower-case hex.
pub fn hex_encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// Decodes lower- or upper-case hex.
pub fn hex_decode(what: &'static str, s: &str) -> Result<Vec<u8>, EncodingError> {
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    let b = s.as_bytes();
    if !b.len().is_multiple_of(2) {
        return Err(EncodingError::Invalid("hex string has an odd length"));
    }
    b.chunks(2)
        .map(|p| match (nibble(p[0]), nibble(p[1])) {
            (Some(h), Some(l)) => Ok(h << 4 | l),
            _ => Err(EncodingError::Invalid("not a hex string")),
        })
        .collect::<Result<Vec<u8>, _>>()
        .map_err(|e| match e {
            EncodingError::Invalid(_) => EncodingError::Invalid(what),
            e => e,
        })
}

/// A reader over a byte slice that never reads past its end; every read says what it reads.
pub struct Reader<'a> {
    bytes: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// A reader over `bytes`, decoding `what`.
    pub fn new(what: &'static str, bytes: &'a [u8]) -> Self {
        Self { bytes, what }
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], EncodingError> {
        if self.bytes.len() < n {
            return Err(EncodingError::Invalid("input is truncated"));
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    /// The next `N` bytes as an array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], EncodingError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// A byte.
    pub fn u8(&mut self) -> Result<u8, EncodingError> {
        Ok(self.take(1)?[0])
    }

    /// A little-endian u16.
    pub fn u16(&mut self) -> Result<u16, EncodingError> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    /// A little-endian u32.
    pub fn u32(&mut self) -> Result<u32, EncodingError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// A little-endian u64.
    pub fn u64(&mut self) -> Result<u64, EncodingError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// Every byte not read yet (the reader is then finished).
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.bytes)
    }

    /// A canonical field element.
    pub fn fr(&mut self, what: &'static str) -> Result<Fr, EncodingError> {
        fr_from_bytes(what, self.take(FR_BYTES)?)
    }

    /// A Jubjub point of the prime-order subgroup.
    pub fn point(&mut self, what: &'static str) -> Result<EdwardsAffine, EncodingError> {
        point_from_bytes(what, self.take(POINT_BYTES)?)
    }

    /// A Jubjub point on the curve, not checked to be in the prime-order subgroup: only for
    /// bytes already checked by [`Reader::point`] before.
    pub fn point_on_curve(&mut self, what: &'static str) -> Result<EdwardsAffine, EncodingError> {
        let bytes = self.take(POINT_BYTES)?;
        let p = EdwardsAffine::deserialize_with_mode(bytes, Compress::Yes, Validate::No)
            .map_err(|_| EncodingError::InvalidPoint(what))?;
        match p.is_on_curve() {
            true => Ok(p),
            false => Err(EncodingError::InvalidPoint(what)),
        }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.bytes.len()
    }

    /// Succeeds only if every byte was consumed.
    pub fn finish(self) -> Result<(), EncodingError> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(EncodingError::Trailing(self.what))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_ec::{AffineRepr, CurveGroup};
    use ark_std::UniformRand;
    use proptest::prelude::*;

    #[test]
    fn field_roundtrip_and_non_canonical_rejected() {
        let mut rng = ark_std::test_rng();
        let x = Fr::rand(&mut rng);
        assert_eq!(fr_from_bytes("x", &fr_to_bytes(&x)).unwrap(), x);
        // The modulus itself (and anything above) is refused.
        assert!(matches!(
            fr_from_bytes("x", &[0xff; 32]),
            Err(EncodingError::NonCanonicalField(_))
        ));
        assert!(matches!(
            fr_from_bytes("x", &[0; 31]),
            Err(EncodingError::Length { .. })
        ));
    }

    #[test]
    fn point_outside_subgroup_rejected() {
        let mut rng = ark_std::test_rng();
        let p =
            (EdwardsAffine::generator() * ark_ed_on_bls12_381::Fr::rand(&mut rng)).into_affine();
        assert_eq!(point_from_bytes("p", &point_to_bytes(&p)).unwrap(), p);
        // A point of order 2 (0, -1) is on the curve but outside the prime-order subgroup.
        let low = EdwardsAffine::new_unchecked(Fr::from(0u64), -Fr::from(1u64));
        assert!(low.is_on_curve());
        assert!(point_from_bytes("p", &point_to_bytes(&low)).is_err());
    }

    proptest! {
        #[test]
        fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = fr_from_bytes("x", &bytes);
            let _ = point_from_bytes("p", &bytes);
            let _ = hex_decode("h", &String::from_utf8_lossy(&bytes));
        }

        #[test]
        fn hex_roundtrip(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            prop_assert_eq!(hex_decode("h", &hex_encode(&bytes)).unwrap(), bytes);
        }
    }
}
