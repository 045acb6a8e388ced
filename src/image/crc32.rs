//! CRC-32 (ISO-HDLC, the one PNG chunks and gzip use), four bytes a step
//! with 4 KiB of tables built when a PNG is checked (a few microseconds),
//! so they cost the binary nothing. `crc32fast` would be faster on x86 but
//! brings 16 KiB of tables and its SIMD code (19 KB of binary) for a check
//! that runs once per uploaded PNG.

const POLY: u32 = 0xEDB8_8320;

/// The slicing-by-4 tables.
pub struct Tables(Box<[[u32; 256]; 4]>);

impl Tables {
    pub fn new() -> Tables {
        Tables(Box::new(tables()))
    }
}

fn tables() -> [[u32; 256]; 4] {
    let mut t = [[0u32; 256]; 4];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 == 1 { POLY ^ (c >> 1) } else { c >> 1 };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut i = 0;
    while i < 256 {
        let mut s = 1;
        while s < 4 {
            let prev = t[s - 1][i];
            t[s][i] = (prev >> 8) ^ t[0][(prev & 0xFF) as usize];
            s += 1;
        }
        i += 1;
    }
    t
}

/// A running CRC-32.
pub struct Crc32<'a>(u32, &'a Tables);

impl Crc32<'_> {
    pub fn new(tables: &Tables) -> Crc32<'_> {
        Crc32(!0, tables)
    }

    pub fn update(&mut self, bytes: &[u8]) {
        let t = &self.1 .0;
        let mut c = self.0;
        let mut words = bytes.chunks_exact(4);
        for w in &mut words {
            c ^= u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
            c = t[3][(c & 0xFF) as usize]
                ^ t[2][((c >> 8) & 0xFF) as usize]
                ^ t[1][((c >> 16) & 0xFF) as usize]
                ^ t[0][(c >> 24) as usize];
        }
        for &b in words.remainder() {
            c = (c >> 8) ^ t[0][((c ^ b as u32) & 0xFF) as usize];
        }
        self.0 = c;
    }

    pub fn sum(&self) -> u32 {
        !self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_check_value_and_another_implementation_at_every_split() {
        let t = Tables::new();
        let mut c = Crc32::new(&t);
        c.update(b"123456789");
        assert_eq!(c.sum(), 0xCBF4_3926, "the standard check value");
        let data: Vec<u8> = (0..1000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for len in [0, 1, 3, 4, 5, 7, 8, 63, 1000] {
            for split in [0, 1, 2, len / 2, len] {
                let split = split.min(len);
                let mut ours = Crc32::new(&t);
                ours.update(&data[..split]);
                ours.update(&data[split..len]);
                let mut theirs = flate2::Crc::new();
                theirs.update(&data[..len]);
                assert_eq!(ours.sum(), theirs.sum(), "len {len} split {split}");
            }
        }
    }
}
