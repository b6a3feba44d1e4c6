//! Length-prefixed frames: a `u32` little-endian length, then that many bytes.
//!
//! The reader never trusts the announced length: a length above the maximum is refused before
//! anything is allocated, and the body is read incrementally, so a peer that announces a large
//! frame and sends nothing costs no memory.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::FrameError;

/// Default maximum frame size: 4 MiB.
pub const DEFAULT_MAX_FRAME_SIZE: usize = 4 << 20;
/// Default largest client request a validator reads: 64 KiB, several times the largest
/// transaction.
pub const DEFAULT_MAX_REQUEST_SIZE: usize = 64 << 10;

/// Size of the length prefix.
pub const HEADER_LEN: usize = 4;

/// Reads one frame.
///
/// Returns `Ok(None)` if the stream ends cleanly before the first byte of a frame,
/// [`FrameError::TooLarge`] if the announced length exceeds `max`, and
/// [`FrameError::Truncated`] if the stream ends inside the length prefix or the body.
pub async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> Result<Option<Vec<u8>>, FrameError> {
    let mut header = [0u8; HEADER_LEN];
    let mut filled = 0;
    while filled < HEADER_LEN {
        let n = reader.read(&mut header[filled..]).await?;
        if n == 0 {
            return if filled == 0 {
                Ok(None)
            } else {
                Err(FrameError::Truncated)
            };
        }
        filled += n;
    }
    let len = u32::from_le_bytes(header);
    let len_usize = usize::try_from(len).map_err(|_| FrameError::TooLarge {
        len: u64::from(len),
        max,
    })?;
    if len_usize > max {
        return Err(FrameError::TooLarge {
            len: u64::from(len),
            max,
        });
    }
    // Grow with the data actually received rather than trusting the announced length.
    let mut body = Vec::with_capacity(len_usize.min(64 * 1024));
    let read = reader.take(u64::from(len)).read_to_end(&mut body).await?;
    if read != len_usize {
        return Err(FrameError::Truncated);
    }
    Ok(Some(body))
}

/// Writes one frame (length prefix and body). Refuses bodies larger than `max` without writing
/// anything. Does not flush or finish the stream.
pub async fn write_frame<W: AsyncWrite + Unpin>(
    writer: &mut W,
    body: &[u8],
    max: usize,
) -> Result<(), FrameError> {
    let too_large = || FrameError::TooLarge {
        len: body.len() as u64,
        max,
    };
    if body.len() > max {
        return Err(too_large());
    }
    let len = u32::try_from(body.len()).map_err(|_| too_large())?;
    writer.write_all(&len.to_le_bytes()).await?;
    writer.write_all(body).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    async fn roundtrip(body: &[u8], max: usize) -> Result<Option<Vec<u8>>, FrameError> {
        let mut buf = Vec::new();
        write_frame(&mut buf, body, max).await?;
        read_frame(&mut buf.as_slice(), max).await
    }

    #[tokio::test]
    async fn roundtrips() {
        for len in [0usize, 1, 3, 4, 5, 1000, 70_000] {
            let body: Vec<u8> = (0..len).map(|i| i as u8).collect();
            assert_eq!(roundtrip(&body, 100_000).await.unwrap(), Some(body));
        }
    }

    #[tokio::test]
    async fn several_frames_then_clean_eof() {
        let mut buf = Vec::new();
        for body in [&b"a"[..], b"", b"hello"] {
            write_frame(&mut buf, body, 16).await.unwrap();
        }
        let mut r = buf.as_slice();
        assert_eq!(read_frame(&mut r, 16).await.unwrap(), Some(b"a".to_vec()));
        assert_eq!(read_frame(&mut r, 16).await.unwrap(), Some(vec![]));
        assert_eq!(
            read_frame(&mut r, 16).await.unwrap(),
            Some(b"hello".to_vec())
        );
        assert_eq!(read_frame(&mut r, 16).await.unwrap(), None);
    }

    #[tokio::test]
    async fn max_is_inclusive() {
        assert!(roundtrip(&[7; 16], 16).await.unwrap().is_some());
        assert!(matches!(
            roundtrip(&[7; 17], 16).await,
            Err(FrameError::TooLarge { len: 17, max: 16 })
        ));
    }

    #[tokio::test]
    async fn oversized_length_is_refused_before_reading_the_body() {
        let mut r: &[u8] = &u32::MAX.to_le_bytes();
        assert!(matches!(
            read_frame(&mut r, DEFAULT_MAX_FRAME_SIZE).await,
            Err(FrameError::TooLarge { .. })
        ));
    }

    #[tokio::test]
    async fn truncated_header_and_body() {
        let mut r: &[u8] = &[1, 0];
        assert!(matches!(
            read_frame(&mut r, 16).await,
            Err(FrameError::Truncated)
        ));
        let mut r: &[u8] = &[5, 0, 0, 0, 1, 2];
        assert!(matches!(
            read_frame(&mut r, 16).await,
            Err(FrameError::Truncated)
        ));
    }

    #[tokio::test]
    async fn writer_refuses_oversized_without_writing() {
        let mut buf = Vec::new();
        assert!(write_frame(&mut buf, &[0; 9], 8).await.is_err());
        assert!(buf.is_empty());
    }

    /// Random byte strings never panic the reader, and whatever it accepts is consistent with
    /// the encoding: re-encoding the decoded frames reproduces a prefix of the input.
    #[tokio::test]
    async fn random_bytes_never_panic() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x5401);
        for _ in 0..5_000 {
            let len = rng.gen_range(0..64);
            let mut bytes: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
            // Make small lengths common so that whole frames are exercised too.
            if len >= 4 && rng.gen_bool(0.5) {
                bytes[1] = 0;
                bytes[2] = 0;
                bytes[3] = 0;
                bytes[0] %= 40;
            }
            let max = rng.gen_range(0..48);
            let mut r = bytes.as_slice();
            let mut reencoded = Vec::new();
            loop {
                match read_frame(&mut r, max).await {
                    Ok(Some(body)) => {
                        assert!(body.len() <= max);
                        write_frame(&mut reencoded, &body, max).await.unwrap();
                    }
                    Ok(None) => {
                        assert_eq!(reencoded, bytes);
                        break;
                    }
                    Err(FrameError::TooLarge { len, .. }) => {
                        assert!(len > max as u64);
                        break;
                    }
                    Err(FrameError::Truncated) => break,
                    Err(e) => panic!("unexpected error {e}"),
                }
            }
            assert!(bytes.starts_with(&reencoded));
        }
    }
}
