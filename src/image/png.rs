//! PNG: the signature, then chunks (length, type, data, CRC-32) from IHDR
//! to IEND, every CRC checked, nothing after IEND. Text and EXIF chunks
//! (`tEXt`, `zTXt`, `iTXt`, `eXIf`: a camera's or an editor's words, a
//! location) are left out of what is stored; every other chunk is kept as it is.

use super::{Checked, Format, Reader, Refusal};

pub const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// Chunks that are not stored.
const DROPPED: [&[u8; 4]; 4] = [b"tEXt", b"zTXt", b"iTXt", b"eXIf"];

pub fn check(bytes: &[u8]) -> Result<Checked, Refusal> {
    let mut r = Reader::new(bytes, SIGNATURE.len());
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(SIGNATURE);
    let (mut width, mut height) = (0, 0);
    let mut first = true;
    let mut image_data = false;
    let tables = super::crc32::Tables::new();
    loop {
        let start = r.pos;
        let len = r.u32_be()?;
        if len > 0x7FFF_FFFF {
            return Err(Refusal::Malformed);
        }
        let kind = r.take(4)?;
        let data = r.take(len as usize)?;
        let crc = r.u32_be()?;
        if !kind.iter().all(u8::is_ascii_alphabetic) {
            return Err(Refusal::Malformed);
        }
        let mut sum = super::crc32::Crc32::new(&tables);
        sum.update(kind);
        sum.update(data);
        if sum.sum() != crc {
            return Err(Refusal::Malformed);
        }
        if first {
            if kind != b"IHDR" || data.len() != 13 {
                return Err(Refusal::Malformed);
            }
            width = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
            height = u32::from_be_bytes([data[4], data[5], data[6], data[7]]);
            first = false;
        } else if kind == b"IHDR" {
            return Err(Refusal::Malformed);
        }
        image_data |= kind == b"IDAT";
        if !DROPPED.iter().any(|d| &d[..] == kind) {
            out.extend_from_slice(&bytes[start..r.pos]);
        }
        if kind == b"IEND" {
            break;
        }
    }
    r.end()?;
    if !image_data {
        return Err(Refusal::Malformed);
    }
    Ok(Checked {
        format: Format::Png,
        width,
        height,
        bytes: out,
    })
}

#[cfg(test)]
mod tests {
    use super::super::{check, samples, Refusal};

    #[test]
    fn a_png_walks_to_iend_and_loses_its_text_and_exif_chunks() {
        let clean = samples::png(3, 2, &[]);
        let leaky = samples::png(
            3,
            2,
            &[
                (*b"tEXt", b"Comment\0shot at home".to_vec()),
                (*b"eXIf", b"MM\0*GPS 48.85 N 2.35 E".to_vec()),
                (
                    *b"iTXt",
                    b"XML:com.adobe.xmp\0\0\0\0\0<x:xmpmeta/>".to_vec(),
                ),
            ],
        );
        let got = check(&leaky).unwrap();
        assert_eq!((got.width, got.height), (3, 2));
        assert_eq!(got.bytes, clean, "the same PNG without them");
        assert!(!got.bytes.windows(3).any(|w| w == b"GPS"));
        assert_eq!(check(&got.bytes).unwrap().bytes, got.bytes, "idempotent");
    }

    #[test]
    fn truncated_trailing_and_corrupt_pngs_are_refused() {
        let png = samples::png(3, 2, &[]);
        assert_eq!(check(&png[..png.len() - 1]), Err(Refusal::Truncated));
        assert_eq!(
            check(&png[..png.len() - 12]),
            Err(Refusal::Truncated),
            "no IEND"
        );
        let mut polyglot = png.clone();
        polyglot.extend_from_slice(b"PK\x03\x04 a zip after the image");
        assert_eq!(check(&polyglot), Err(Refusal::Trailing));
        let mut flipped = png.clone();
        flipped[40] ^= 1;
        assert_eq!(check(&flipped), Err(Refusal::Malformed), "a CRC that fails");
        let mut no_idat = samples::png(3, 2, &[]);
        // IHDR (8 + 25 bytes) then IEND: the IDAT cut out.
        let iend = no_idat.len() - 12;
        no_idat.drain(33..iend);
        assert_eq!(check(&no_idat), Err(Refusal::Malformed));
    }
}
