//! GIF: the header and logical screen, its palette, then blocks to the
//! trailer (extensions and their sub-blocks, images with their palettes and
//! data sub-blocks), nothing after the trailer. Comment extensions are left
//! out of what is stored; everything else (animation included) is kept.

use super::{Checked, Format, Reader, Refusal};

pub fn check(bytes: &[u8]) -> Result<Checked, Refusal> {
    let mut r = Reader::new(bytes, 6);
    let width = u32::from(r.u16_le()?);
    let height = u32::from(r.u16_le()?);
    let packed = r.u8()?;
    r.take(2)?;
    if packed & 0x80 != 0 {
        r.take(palette(packed))?;
    }
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(&bytes[..r.pos]);
    let mut images = 0;
    loop {
        let start = r.pos;
        match r.u8()? {
            0x21 => {
                let label = r.u8()?;
                sub_blocks(&mut r)?;
                if label != 0xFE {
                    out.extend_from_slice(&bytes[start..r.pos]);
                }
            }
            0x2C => {
                r.take(8)?;
                let packed = r.u8()?;
                if packed & 0x80 != 0 {
                    r.take(palette(packed))?;
                }
                let min_code = r.u8()?;
                if !(1..=11).contains(&min_code) {
                    return Err(Refusal::Malformed);
                }
                sub_blocks(&mut r)?;
                images += 1;
                out.extend_from_slice(&bytes[start..r.pos]);
            }
            0x3B => {
                out.push(0x3B);
                break;
            }
            _ => return Err(Refusal::Malformed),
        }
    }
    r.end()?;
    if images == 0 {
        return Err(Refusal::Malformed);
    }
    Ok(Checked {
        format: Format::Gif,
        width,
        height,
        bytes: out,
    })
}

/// The bytes of a colour table its packed field announces.
fn palette(packed: u8) -> usize {
    3 << ((packed & 7) + 1)
}

/// Data sub-blocks: a length byte and that many bytes, until a zero length.
fn sub_blocks(r: &mut Reader) -> Result<(), Refusal> {
    loop {
        let n = r.u8()?;
        if n == 0 {
            return Ok(());
        }
        r.take(usize::from(n))?;
    }
}

#[cfg(test)]
mod tests {
    use super::super::{check, samples, Refusal};

    #[test]
    fn a_gif_walks_to_its_trailer_and_loses_its_comments() {
        let got = check(&samples::gif(5, 4, b"made by a stranger")).unwrap();
        assert_eq!((got.width, got.height), (5, 4));
        assert_eq!(got.bytes, samples::gif(5, 4, b""));
        let gif = samples::gif(5, 4, b"");
        assert_eq!(check(&gif[..gif.len() - 1]), Err(Refusal::Truncated));
        let mut polyglot = gif.clone();
        polyglot.extend_from_slice(b"//<script>");
        assert_eq!(check(&polyglot), Err(Refusal::Trailing));
        let mut odd = gif.clone();
        let at = odd.len() - 1;
        odd.insert(at, 0x99);
        assert_eq!(check(&odd), Err(Refusal::Malformed), "an unknown block");
        // Only a trailer: no image.
        let mut empty = gif[..19].to_vec();
        empty.push(0x3B);
        assert_eq!(check(&empty), Err(Refusal::Malformed));
    }
}
