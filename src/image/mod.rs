//! Uploaded images checked and cleaned without decoding a pixel: the format
//! recognised by its bytes (PNG, JPEG, GIF, WebP; never by a name or a
//! declared type), its structure walked to its end with nothing after it
//! (so a truncated file or a polyglot is refused), its width and height
//! read, and what could leak (EXIF with a phone's location, XMP, comments,
//! text chunks) left out of the bytes to store. One file per format; what
//! they share (a bounds-checked reader, the refusals) is here. Where uploads
//! come from and where they are kept is not this module's business.

mod crc32;
mod gif;
mod jpeg;
pub mod make;
mod png;
mod webp;

/// An image format picochat accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Png,
    Jpeg,
    Gif,
    Webp,
}

impl Format {
    pub fn mime(self) -> &'static str {
        match self {
            Format::Png => "image/png",
            Format::Jpeg => "image/jpeg",
            Format::Gif => "image/gif",
            Format::Webp => "image/webp",
        }
    }

    pub fn ext(self) -> &'static str {
        match self {
            Format::Png => "png",
            Format::Jpeg => "jpg",
            Format::Gif => "gif",
            Format::Webp => "webp",
        }
    }
}

/// An image that passed: its format, its size in pixels, and the bytes to
/// store (the upload's, less what could leak).
#[derive(Debug, PartialEq, Eq)]
pub struct Checked {
    pub format: Format,
    pub width: u32,
    pub height: u32,
    pub bytes: Vec<u8>,
}

/// Why bytes were refused (all of them are `bad_upload` to the client).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not PNG, JPEG, GIF or WebP by its first bytes (HTML, SVG, anything).
    NotAnImage,
    /// The structure ends before it should.
    Truncated,
    /// Bytes after the structure's end (a polyglot, a file appended).
    Trailing,
    /// The structure is wrong (a bad checksum, a missing or misplaced part),
    /// or its size is zero or over [`MAX_SIDE`] / [`MAX_PIXELS`].
    Malformed,
}

/// The longest side accepted, in pixels (the page downsizes to 2,048).
pub const MAX_SIDE: u32 = 16_384;
/// The most pixels accepted: a browser decoding an image holds 4 bytes a
/// pixel, so this bounds what a picture can make a visitor's page allocate.
pub const MAX_PIXELS: u64 = 50_000_000;

/// Checks `bytes` and returns the image to store, or why not.
pub fn check(bytes: &[u8]) -> Result<Checked, Refusal> {
    let checked = if bytes.starts_with(png::SIGNATURE) {
        png::check(bytes)?
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        jpeg::check(bytes)?
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        gif::check(bytes)?
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        webp::check(bytes)?
    } else {
        return Err(Refusal::NotAnImage);
    };
    let (w, h) = (checked.width, checked.height);
    if w == 0 || h == 0 || w > MAX_SIDE || h > MAX_SIDE || u64::from(w) * u64::from(h) > MAX_PIXELS
    {
        return Err(Refusal::Malformed);
    }
    Ok(checked)
}

/// An uploaded image's name as a URL gives it (`/u/<name>`) and as it is
/// stored: 22 URL-safe base64 characters and one of the four extensions,
/// nothing else (a name is a key to look up, never a path).
pub fn stored_name(name: &str) -> Option<&str> {
    let (id, ext) = name.split_once('.')?;
    let id_ok = id.len() == 22
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (id_ok && ["png", "jpg", "gif", "webp"].contains(&ext)).then_some(name)
}

/// The format a stored file's bytes are (for serving): `None` when they are none of the four.
pub fn format_of(bytes: &[u8]) -> Option<Format> {
    if bytes.starts_with(png::SIGNATURE) {
        Some(Format::Png)
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(Format::Jpeg)
    } else if bytes.starts_with(b"GIF8") {
        Some(Format::Gif)
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some(Format::Webp)
    } else {
        None
    }
}

/// A reader over the upload: every read is bounds-checked, and running past
/// the end is [`Refusal::Truncated`], never a panic.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8], pos: usize) -> Reader<'a> {
        Reader { bytes, pos }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Refusal> {
        let end = self.pos.checked_add(n).ok_or(Refusal::Truncated)?;
        let got = self.bytes.get(self.pos..end).ok_or(Refusal::Truncated)?;
        self.pos = end;
        Ok(got)
    }

    fn u8(&mut self) -> Result<u8, Refusal> {
        Ok(self.take(1)?[0])
    }

    fn u16_be(&mut self) -> Result<u16, Refusal> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u16_le(&mut self) -> Result<u16, Refusal> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32_be(&mut self) -> Result<u32, Refusal> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u32_le(&mut self) -> Result<u32, Refusal> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    /// After the structure's last part: nothing may follow.
    fn end(&self) -> Result<(), Refusal> {
        if self.at_end() {
            Ok(())
        } else {
            Err(Refusal::Trailing)
        }
    }
}

#[cfg(test)]
pub(crate) mod samples;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anything_but_the_four_formats_is_not_an_image() {
        for bad in [
            &b"<html><script>alert(1)</script></html>"[..],
            b"<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(1)\"/>",
            b"",
            b"\x89PN",
            b"RIFF\x04\x00\x00\x00WAVE",
            b"%PDF-1.7",
        ] {
            assert_eq!(check(bad), Err(Refusal::NotAnImage), "{bad:?}");
        }
    }

    #[test]
    fn sizes_past_the_bounds_are_malformed() {
        let huge = samples::png(20_000, 10, &[]);
        assert_eq!(check(&huge), Err(Refusal::Malformed));
        let many = samples::png(10_000, 10_000, &[]);
        assert_eq!(check(&many), Err(Refusal::Malformed), "100 Mpx");
        let empty = samples::png(0, 10, &[]);
        assert_eq!(check(&empty), Err(Refusal::Malformed));
        assert!(check(&samples::png(16_384, 3_000, &[])).is_ok());
    }
}
