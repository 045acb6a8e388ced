//! Small images built byte by byte for the tests (here and in the fuzz
//! seeds): valid structure, made-up pixels (nothing here decodes them).

/// A PNG of `w` × `h` with `extra` chunks between IHDR and IDAT.
pub fn png(w: u32, h: u32, extra: &[([u8; 4], Vec<u8>)]) -> Vec<u8> {
    use super::make::png_chunk as chunk;
    let mut out = super::png::SIGNATURE.to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    for (kind, data) in extra {
        chunk(&mut out, kind, data);
    }
    chunk(&mut out, b"IDAT", b"x\x9c\x63\x00\x00\x00\x01\x00\x01");
    chunk(&mut out, b"IEND", b"");
    out
}

/// An EXIF block (`Exif\0\0` and a TIFF structure, big-endian) whose IFD0
/// holds Orientation (when given) and a GPS pointer, with a GPS IFD naming
/// a latitude: what a phone writes.
pub fn exif(orientation: Option<u16>) -> Vec<u8> {
    let mut t = b"MM\0\x2a\0\0\0\x08".to_vec();
    let entries: u16 = if orientation.is_some() { 2 } else { 1 };
    t.extend_from_slice(&entries.to_be_bytes());
    if let Some(o) = orientation {
        t.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1]);
        t.extend_from_slice(&o.to_be_bytes());
        t.extend_from_slice(&[0, 0]);
    }
    let gps_at = 8 + 2 + 12 * u32::from(entries) + 4;
    t.extend_from_slice(&[0x88, 0x25, 0, 4, 0, 0, 0, 1]);
    t.extend_from_slice(&gps_at.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 0]);
    // The GPS IFD: latitude ref "N", and the words a test looks for.
    t.extend_from_slice(&[0, 1, 0, 1, 0, 2, 0, 0, 0, 2, b'N', 0, 0, 0, 0, 0]);
    t.extend_from_slice(b"GPS 48.8566 N 2.3522 E");
    let mut out = b"Exif\0\0".to_vec();
    out.extend_from_slice(&t);
    out
}

fn segment(out: &mut Vec<u8>, marker: u8, data: &[u8]) {
    out.extend_from_slice(&[0xFF, marker]);
    out.extend_from_slice(&((data.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(data);
}

/// A baseline JPEG of `w` × `h`: SOI, JFIF, `before` segments (marker,
/// data), a frame, a scan whose data holds a stuffed 0xFF and a restart
/// marker, EOI.
pub fn jpeg(w: u16, h: u16, before: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut out = vec![0xFF, 0xD8];
    segment(&mut out, 0xE0, b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0");
    for (marker, data) in before {
        segment(&mut out, *marker, data);
    }
    segment(&mut out, 0xDB, &[0; 65]);
    let mut sof = vec![8];
    sof.extend_from_slice(&h.to_be_bytes());
    sof.extend_from_slice(&w.to_be_bytes());
    sof.extend_from_slice(&[1, 1, 0x11, 0]);
    segment(&mut out, 0xC0, &sof);
    segment(&mut out, 0xC4, &[0; 20]);
    segment(&mut out, 0xDA, &[1, 1, 0, 0, 63, 0]);
    out.extend_from_slice(&[0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56, 0x78]);
    out.extend_from_slice(&[0xFF, 0xD9]);
    out
}

/// A GIF89a of `w` × `h` with a global palette, a comment and one frame.
pub fn gif(w: u16, h: u16, comment: &[u8]) -> Vec<u8> {
    let mut out = b"GIF89a".to_vec();
    out.extend_from_slice(&w.to_le_bytes());
    out.extend_from_slice(&h.to_le_bytes());
    out.extend_from_slice(&[0x80, 0, 0]);
    out.extend_from_slice(&[0, 0, 0, 255, 255, 255]);
    if !comment.is_empty() {
        out.extend_from_slice(&[0x21, 0xFE, comment.len() as u8]);
        out.extend_from_slice(comment);
        out.push(0);
    }
    out.extend_from_slice(&[0x21, 0xF9, 4, 0, 0, 0, 0, 0]);
    out.push(0x2C);
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&w.to_le_bytes());
    out.extend_from_slice(&h.to_le_bytes());
    out.push(0);
    out.extend_from_slice(&[2, 2, 0x4C, 0x01, 0]);
    out.push(0x3B);
    out
}

/// A lossless WebP of `w` × `h`; with `exif`, an extended one (VP8X) that
/// carries an EXIF chunk and says so in its flags.
pub fn webp(w: u32, h: u32, exif: Option<&[u8]>) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(kind);
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
        if data.len() % 2 == 1 {
            out.push(0);
        }
    }
    let mut body = b"WEBP".to_vec();
    if exif.is_some() {
        let mut x = vec![0x08, 0, 0, 0];
        x.extend_from_slice(&(w - 1).to_le_bytes()[..3]);
        x.extend_from_slice(&(h - 1).to_le_bytes()[..3]);
        chunk(&mut body, b"VP8X", &x);
    }
    let bits = (w - 1) | ((h - 1) << 14);
    let mut l = vec![0x2F];
    l.extend_from_slice(&bits.to_le_bytes());
    l.extend_from_slice(&[0x10, 0x07, 0x10, 0x11, 0x11]);
    chunk(&mut body, b"VP8L", &l);
    if let Some(e) = exif {
        chunk(&mut body, b"EXIF", e);
    }
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    out
}
