//! JPEG: SOI, then segments (a marker and, for most, a length) to EOI, the
//! entropy-coded data after each scan walked to the next marker, nothing
//! after EOI. EXIF and XMP (APP1: location, device, a thumbnail), other
//! application segments and comments are left out of what is stored; the
//! JFIF header (APP0), the colour profile (APP2) and Adobe's colour
//! transform (APP14) stay. When the EXIF had an Orientation, a minimal EXIF
//! block with only that tag takes its place, so a phone's upright photo
//! stays upright.

use super::{Checked, Format, Reader, Refusal};

pub fn check(bytes: &[u8]) -> Result<Checked, Refusal> {
    let mut r = Reader::new(bytes, 2);
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(&[0xFF, 0xD8]);
    let mut oriented = false;
    let mut size = None;
    let mut scanned = false;
    loop {
        if r.u8()? != 0xFF {
            return Err(Refusal::Malformed);
        }
        let mut marker = r.u8()?;
        while marker == 0xFF {
            marker = r.u8()?; // fill bytes before a marker
        }
        match marker {
            0xD9 => {
                out.extend_from_slice(&[0xFF, 0xD9]);
                break;
            }
            0xD8 | 0x00 => return Err(Refusal::Malformed),
            // Markers without a length: restarts, TEM.
            0xD0..=0xD7 | 0x01 => out.extend_from_slice(&[0xFF, marker]),
            _ => {
                let start = r.pos - 2;
                let len = r.u16_be()?;
                if len < 2 {
                    return Err(Refusal::Malformed);
                }
                let data = r.take(usize::from(len) - 2)?;
                let keep = match marker {
                    0xE1 => {
                        let exif = data.strip_prefix(b"Exif\0\0").filter(|_| !oriented);
                        if let Some(o) = exif.and_then(exif_orientation) {
                            out.extend_from_slice(&orientation_block(o));
                            oriented = true;
                        }
                        false
                    }
                    0xE0 | 0xE2 | 0xEE => true,
                    0xE3..=0xEF | 0xFE => false,
                    0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => {
                        if data.len() < 5 || size.is_some() {
                            return Err(Refusal::Malformed);
                        }
                        let h = u16::from_be_bytes([data[1], data[2]]);
                        let w = u16::from_be_bytes([data[3], data[4]]);
                        size = Some((u32::from(w), u32::from(h)));
                        true
                    }
                    _ => true,
                };
                if keep {
                    out.extend_from_slice(&bytes[start..r.pos]);
                }
                if marker == 0xDA {
                    if size.is_none() {
                        return Err(Refusal::Malformed);
                    }
                    scanned = true;
                    let from = r.pos;
                    let to = scan_end(bytes, from)?;
                    out.extend_from_slice(&bytes[from..to]);
                    r.pos = to;
                }
            }
        }
    }
    r.end()?;
    let (Some((width, height)), true) = (size, scanned) else {
        return Err(Refusal::Malformed);
    };
    Ok(Checked {
        format: Format::Jpeg,
        width,
        height,
        bytes: out,
    })
}

/// Where a scan's entropy-coded data ends: at the first 0xFF that starts a
/// marker (not a stuffed 0xFF00, not a restart 0xFFD0-D7 inside the data).
fn scan_end(bytes: &[u8], from: usize) -> Result<usize, Refusal> {
    let mut i = from;
    loop {
        let at = bytes
            .get(i..)
            .and_then(|rest| rest.iter().position(|&b| b == 0xFF))
            .ok_or(Refusal::Truncated)?;
        let ff = i + at;
        match bytes.get(ff + 1) {
            None => return Err(Refusal::Truncated),
            Some(0x00) | Some(0xD0..=0xD7) => i = ff + 2,
            Some(_) => return Ok(ff),
        }
    }
}

/// The Orientation (1 to 8) in IFD0 of an EXIF TIFF structure, if it has one.
fn exif_orientation(tiff: &[u8]) -> Option<u16> {
    let big = match tiff.get(..2)? {
        b"MM" => true,
        b"II" => false,
        _ => return None,
    };
    let u16_at = |at: usize| -> Option<u16> {
        let b = tiff.get(at..at + 2)?;
        Some(if big {
            u16::from_be_bytes([b[0], b[1]])
        } else {
            u16::from_le_bytes([b[0], b[1]])
        })
    };
    let u32_at = |at: usize| -> Option<u32> {
        let b = tiff.get(at..at + 4)?;
        let b = [b[0], b[1], b[2], b[3]];
        Some(if big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    };
    if u16_at(2)? != 42 {
        return None;
    }
    let ifd = u32_at(4)? as usize;
    let count = usize::from(u16_at(ifd)?);
    (0..count.min(256)).find_map(|i| {
        let e = ifd + 2 + 12 * i;
        // Tag 0x0112, type SHORT, one value.
        (u16_at(e)? == 0x0112 && u16_at(e + 2)? == 3 && u32_at(e + 4)? == 1)
            .then(|| u16_at(e + 8))
            .flatten()
            .filter(|o| (1..=8).contains(o))
    })
}

/// An APP1 segment whose EXIF holds only IFD0 with one tag: Orientation.
fn orientation_block(orientation: u16) -> Vec<u8> {
    let mut tiff = b"MM\0\x2a\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01".to_vec();
    tiff.extend_from_slice(&orientation.to_be_bytes());
    tiff.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    let mut out = vec![0xFF, 0xE1];
    out.extend_from_slice(&((2 + 6 + tiff.len()) as u16).to_be_bytes());
    out.extend_from_slice(b"Exif\0\0");
    out.extend_from_slice(&tiff);
    out
}

#[cfg(test)]
mod tests {
    use super::super::{check, samples, Refusal};
    use super::exif_orientation;

    #[test]
    fn a_phone_photo_loses_its_exif_but_keeps_its_orientation() {
        let photo = samples::jpeg(
            640,
            480,
            &[
                (0xE1, samples::exif(Some(6))),
                (
                    0xE1,
                    b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta>GPS</x:xmpmeta>".to_vec(),
                ),
                (0xED, b"Photoshop 3.0\0 IPTC city".to_vec()),
                (0xFE, b"taken at grandma's".to_vec()),
                (0xE2, b"ICC_PROFILE\0\x01\x01 colours".to_vec()),
            ],
        );
        let got = check(&photo).unwrap();
        assert_eq!((got.width, got.height), (640, 480));
        for leak in [&b"GPS"[..], b"IPTC", b"grandma", b"xmpmeta"] {
            assert!(
                !got.bytes.windows(leak.len()).any(|w| w == leak),
                "{leak:?} left"
            );
        }
        assert!(
            got.bytes.windows(11).any(|w| w == b"ICC_PROFILE"),
            "colours kept"
        );
        // The one EXIF left right after the JFIF header: Orientation 6, nothing else.
        let at = 2 + 18;
        assert_eq!(&got.bytes[at..at + 2], &[0xFF, 0xE1]);
        assert_eq!(exif_orientation(&got.bytes[at + 10..]), Some(6));
        let again = check(&got.bytes).unwrap();
        assert_eq!(again.bytes, got.bytes, "idempotent");
        // Without an orientation, no EXIF at all.
        let plain = check(&samples::jpeg(8, 8, &[(0xE1, samples::exif(None))])).unwrap();
        assert_eq!(plain.bytes, samples::jpeg(8, 8, &[]));
        // Little-endian EXIF reads the same.
        let ii = b"II\x2a\0\x08\0\0\0\x01\0\x12\x01\x03\0\x01\0\0\0\x03\0\0\0\0\0\0\0";
        assert_eq!(exif_orientation(ii), Some(3));
    }

    #[test]
    fn truncated_trailing_and_misordered_jpegs_are_refused() {
        let jpeg = samples::jpeg(8, 8, &[]);
        assert_eq!(
            check(&jpeg[..jpeg.len() - 2]),
            Err(Refusal::Truncated),
            "no EOI"
        );
        assert_eq!(check(&jpeg[..30]), Err(Refusal::Truncated));
        let mut polyglot = jpeg.clone();
        polyglot.extend_from_slice(b"<script>alert(1)</script>");
        assert_eq!(check(&polyglot), Err(Refusal::Trailing));
        // A scan before any frame.
        let mut no_frame = vec![0xFF, 0xD8, 0xFF, 0xDA, 0, 2];
        no_frame.extend_from_slice(&[0xFF, 0xD9]);
        assert_eq!(check(&no_frame), Err(Refusal::Malformed));
        // A segment length below 2, and a second SOI.
        assert_eq!(
            check(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 1]),
            Err(Refusal::Malformed)
        );
        assert_eq!(check(&[0xFF, 0xD8, 0xFF, 0xD8]), Err(Refusal::Malformed));
    }
}
