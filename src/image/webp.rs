//! WebP: a RIFF container whose length is exactly the file's, holding
//! chunks (a four-letter type, a length, the data, a pad byte to an even
//! length) to its end. The size comes from VP8X, VP8L or VP8; `EXIF` and
//! `XMP ` chunks are left out of what is stored, VP8X's flags saying so.

use super::{Checked, Format, Reader, Refusal};

pub fn check(bytes: &[u8]) -> Result<Checked, Refusal> {
    let mut r = Reader::new(bytes, 4);
    let riff = r.u32_le()? as usize;
    if riff.checked_add(8) != Some(bytes.len()) {
        return Err(if riff + 8 > bytes.len() {
            Refusal::Truncated
        } else {
            Refusal::Trailing
        });
    }
    r.take(4)?; // "WEBP"
    let mut body = b"WEBP".to_vec();
    let mut size = None;
    let mut extended = None;
    let mut image = false;
    let mut first = true;
    while !r.at_end() {
        let start = r.pos;
        let kind: [u8; 4] = r.take(4)?.try_into().map_err(|_| Refusal::Truncated)?;
        let len = r.u32_le()? as usize;
        let data = r.take(len)?;
        if len % 2 == 1 {
            r.take(1)?;
        }
        match &kind {
            b"VP8X" if first && data.len() >= 10 => {
                let w = u32::from_le_bytes([data[4], data[5], data[6], 0]) + 1;
                let h = u32::from_le_bytes([data[7], data[8], data[9], 0]) + 1;
                size = Some((w, h));
                extended = Some(body.len() + 8);
            }
            b"VP8X" => return Err(Refusal::Malformed),
            b"VP8L" => {
                image = true;
                if data.len() < 5 || data[0] != 0x2F {
                    return Err(Refusal::Malformed);
                }
                let bits = u32::from_le_bytes([data[1], data[2], data[3], data[4]]);
                size = size.or(Some(((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)));
            }
            b"VP8 " => {
                image = true;
                if data.len() < 10 || data[3..6] != [0x9D, 0x01, 0x2A] {
                    return Err(Refusal::Malformed);
                }
                let w = u32::from(u16::from_le_bytes([data[6], data[7]]) & 0x3FFF);
                let h = u32::from(u16::from_le_bytes([data[8], data[9]]) & 0x3FFF);
                size = size.or(Some((w, h)));
            }
            b"ANMF" => image = true,
            _ => {}
        }
        first = false;
        if &kind != b"EXIF" && &kind != b"XMP " {
            body.extend_from_slice(&bytes[start..r.pos]);
        }
    }
    let (Some((width, height)), true) = (size, image) else {
        return Err(Refusal::Malformed);
    };
    if let Some(flags) = extended {
        body[flags] &= !(0x08 | 0x04); // no EXIF, no XMP any more
    }
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    Ok(Checked {
        format: Format::Webp,
        width,
        height,
        bytes: out,
    })
}

#[cfg(test)]
mod tests {
    use super::super::{check, samples, Refusal};

    #[test]
    fn a_webp_walks_its_chunks_and_loses_its_exif() {
        let plain = check(&samples::webp(7, 3, None)).unwrap();
        assert_eq!((plain.width, plain.height), (7, 3));
        assert_eq!(plain.bytes, samples::webp(7, 3, None));
        let exif = samples::exif(Some(1));
        let got = check(&samples::webp(7, 3, Some(&exif))).unwrap();
        assert_eq!((got.width, got.height), (7, 3));
        assert!(!got.bytes.windows(4).any(|w| w == b"EXIF" || w == b"GPS "));
        assert_eq!(got.bytes[20] & 0x08, 0, "VP8X no longer says EXIF");
        assert_eq!(check(&got.bytes).unwrap().bytes, got.bytes);
        let webp = samples::webp(7, 3, None);
        assert_eq!(check(&webp[..webp.len() - 1]), Err(Refusal::Truncated));
        let mut polyglot = webp.clone();
        polyglot.extend_from_slice(b"<html>");
        assert_eq!(check(&polyglot), Err(Refusal::Trailing));
        let mut lying = webp.clone();
        lying[4] += 2; // RIFF says 2 bytes more than the chunks hold
        lying.extend_from_slice(b"XY");
        assert_eq!(
            check(&lying),
            Err(Refusal::Truncated),
            "a chunk header cut short"
        );
    }
}
