//! Images made, not read: a PNG around image data that does not compress,
//! as dense as a photo's, of any size (what `picochat-load --images-rate`
//! uploads, and the upload tests and the image benchmark use), and the PNG
//! chunk writer the test samples are built with. Nothing here decodes or
//! checks an image (that is the rest of this module); the server never calls it.

use super::crc32::{Crc32, Tables};
use super::png::SIGNATURE;

/// Appends one PNG chunk: length, type, data and the CRC-32 of type and data.
pub fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let tables = Tables::new();
    let mut crc = Crc32::new(&tables);
    crc.update(kind);
    crc.update(data);
    out.extend_from_slice(&crc.sum().to_be_bytes());
}

/// A 640 × 640 RGB PNG whose IDAT holds `size` bytes that do not compress
/// (a photo's compressed data is as dense); the file is `size` + 57 bytes.
/// Its structure is valid to IEND and it carries nothing to strip, so it is
/// stored as sent.
pub fn dense_png(size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size + 64);
    out.extend_from_slice(SIGNATURE);
    let mut ihdr = 640u32.to_be_bytes().repeat(2);
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    png_chunk(&mut out, b"IHDR", &ihdr);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let data: Vec<u8> = (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    png_chunk(&mut out, b"IDAT", &data);
    png_chunk(&mut out, b"IEND", b"");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dense_png_is_an_image_that_is_stored_as_sent() {
        let png = dense_png(10_000);
        assert_eq!(png.len(), 10_057);
        let checked = super::super::check(&png).expect("a valid PNG");
        assert_eq!(checked.bytes, png);
        assert_eq!((checked.width, checked.height), (640, 640));
        // It does not compress: the deflated copy is no smaller.
        let mut small = Vec::new();
        let mut z = flate2::write::DeflateEncoder::new(&mut small, flate2::Compression::best());
        std::io::Write::write_all(&mut z, &png).unwrap();
        z.finish().unwrap();
        assert!(small.len() >= png.len(), "{} of {}", small.len(), png.len());
    }
}
