//! A PNG whose image data does not compress, as dense as a photo's: for the
//! upload tests and the image-serving benchmark (`benches/scenarios/images.rs`
//! includes this file).

/// A PNG of `size` bytes of image data that does not compress (a photo's
/// compressed data is as dense), around a valid chunk structure.
pub fn dense_png(size: usize) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(data);
        out.extend_from_slice(&crc.sum().to_be_bytes());
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = 640u32.to_be_bytes().repeat(2);
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let data: Vec<u8> = (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    chunk(&mut out, b"IDAT", &data);
    chunk(&mut out, b"IEND", b"");
    out
}
