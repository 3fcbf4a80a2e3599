//! A pre-scan of a DICOM file's element lengths, before dicom-rs parses it.
//!
//! dicom-rs allocates and zero-fills each value to its declared length
//! before reading it, so a 10 KB file whose damaged length field claims
//! 4 GB costs 4 GB of memory and seconds of time (found by fuzzing) before
//! failing. Walking the element headers first and refusing any length
//! larger than what is left of the file keeps that from happening.
//!
//! The scan mirrors how dicom-rs reads element headers (explicit VR little
//! and big endian, implicit VR little endian; deflated datasets are left
//! alone) and only refuses a length that cannot fit: where it cannot follow
//! the file it stops quietly and leaves the verdict to dicom-rs.

/// An element whose length cannot fit: its tag, the length it claims and
/// the bytes left after its header.
pub(crate) type TooLong = ((u16, u16), u64, u64);
/// One element header read: tag, length and where its value starts;
/// `None` where the scan stops following the file.
type Step = Result<Option<((u16, u16), u32, usize)>, TooLong>;

/// `Err` for the first element whose length cannot fit in the file.
pub(crate) fn check_lengths(b: &[u8]) -> Result<(), TooLong> {
    if b.len() < 132 || &b[128..132] != b"DICM" {
        return Ok(());
    }
    let mut s = Scanner {
        b,
        pos: 132,
        fragments: false,
        big: false,
    };
    // The meta group is explicit VR little endian, whatever follows. Like
    // dicom-rs, trust its group length (0002,0000) for where it ends, and
    // fall back to "while the group is 0002".
    let mut syntax = None;
    let mut end = None;
    while end.map_or(s.peek_group() == Some(0x0002), |e| s.pos < e) {
        let Some((tag, len, value)) = s.explicit()? else {
            return Ok(());
        };
        if tag == (0x0002, 0x0000) && len == 4 && end.is_none() {
            end = s.u32_at(value).map(|l| value + 4 + l as usize);
        }
        if tag == (0x0002, 0x0010) {
            syntax = b.get(value..value + len as usize).map(|v| {
                String::from_utf8_lossy(v)
                    .trim_end_matches(['\0', ' '])
                    .to_string()
            });
        }
    }
    let explicit = match syntax.as_deref() {
        Some("1.2.840.10008.1.2") => false,
        Some("1.2.840.10008.1.2.2") => {
            s.big = true;
            true
        }
        // Explicit VR little endian, and the compressed syntaxes whose
        // dataset is explicit VR little endian (JPEG, JPEG 2000, RLE...);
        // not deflated.
        Some(ts) if ts != "1.2.840.10008.1.2.1.99" => true,
        _ => return Ok(()),
    };
    while s.pos < b.len() {
        let step = if explicit {
            s.explicit()?
        } else {
            s.implicit()?
        };
        if step.is_none() {
            return Ok(());
        }
    }
    Ok(())
}

struct Scanner<'a> {
    b: &'a [u8],
    pos: usize,
    /// Inside encapsulated pixel data, whose items are raw fragments.
    fragments: bool,
    /// Explicit VR big endian (the retired syntax): numbers read backwards.
    big: bool,
}

const UNDEFINED: u32 = 0xFFFF_FFFF;
const PIXEL_DATA: (u16, u16) = (0x7FE0, 0x0010);

impl Scanner<'_> {
    fn u16_at(&self, i: usize) -> Option<u16> {
        let x: [u8; 2] = self.b.get(i..i + 2)?.try_into().ok()?;
        Some(if self.big {
            u16::from_be_bytes(x)
        } else {
            u16::from_le_bytes(x)
        })
    }

    fn u32_at(&self, i: usize) -> Option<u32> {
        let x: [u8; 4] = self.b.get(i..i + 4)?.try_into().ok()?;
        Some(if self.big {
            u32::from_be_bytes(x)
        } else {
            u32::from_le_bytes(x)
        })
    }

    fn peek_group(&self) -> Option<u16> {
        self.u16_at(self.pos)
    }

    fn tag(&self) -> Option<(u16, u16)> {
        Some((self.u16_at(self.pos)?, self.u16_at(self.pos + 2)?))
    }

    /// A value of `len` bytes at `start`: refused if it cannot fit, else
    /// skipped, or entered when `enter` (sequences and their items, whose
    /// contents are elements to check in turn) or of undefined length.
    fn value(&mut self, tag: (u16, u16), start: usize, len: u32, enter: bool) -> Step {
        if len != UNDEFINED {
            let remaining = self.b.len().saturating_sub(start) as u64;
            if u64::from(len) > remaining {
                return Err((tag, u64::from(len), remaining));
            }
        }
        self.pos = if enter || len == UNDEFINED {
            start
        } else {
            start + len as usize
        };
        Ok(Some((tag, len, start)))
    }

    /// Items and delimiters (FFFE,xxxx) have a 4-byte length in any syntax.
    fn item(&mut self, tag: (u16, u16)) -> Step {
        let Some(len) = self.u32_at(self.pos + 4) else {
            return Ok(None);
        };
        if tag == (0xFFFE, 0xE0DD) {
            self.fragments = false;
        }
        let enter = tag == (0xFFFE, 0xE000) && !self.fragments;
        self.value(tag, self.pos + 8, len, enter)
    }

    /// One explicit VR little endian element.
    fn explicit(&mut self) -> Step {
        let Some(tag) = self.tag() else {
            return Ok(None);
        };
        if tag.0 == 0xFFFE {
            return self.item(tag);
        }
        let Some(vr) = self.b.get(self.pos + 4..self.pos + 6) else {
            return Ok(None);
        };
        // As dicom-rs reads it: these VRs have a 2-byte length; every other
        // one, an unknown (damaged) VR included, is read as UN with a
        // 4-byte length after 2 reserved bytes.
        let short = matches!(
            vr,
            b"AE"
                | b"AS"
                | b"AT"
                | b"CS"
                | b"DA"
                | b"DS"
                | b"DT"
                | b"FL"
                | b"FD"
                | b"IS"
                | b"LO"
                | b"LT"
                | b"PN"
                | b"SH"
                | b"SL"
                | b"SS"
                | b"ST"
                | b"TM"
                | b"UI"
                | b"UL"
                | b"US"
        );
        let (len, start) = if !short {
            (self.u32_at(self.pos + 8), self.pos + 12)
        } else {
            (self.u16_at(self.pos + 6).map(u32::from), self.pos + 8)
        };
        let Some(len) = len else {
            return Ok(None);
        };
        if tag == PIXEL_DATA && len == UNDEFINED {
            self.fragments = true;
        }
        self.value(tag, start, len, vr == b"SQ")
    }

    /// One implicit VR little endian element (the VR is not in the file,
    /// so defined-length sequences are skipped whole).
    fn implicit(&mut self) -> Step {
        let Some(tag) = self.tag() else {
            return Ok(None);
        };
        if tag.0 == 0xFFFE {
            return self.item(tag);
        }
        let Some(len) = self.u32_at(self.pos + 4) else {
            return Ok(None);
        };
        if tag == PIXEL_DATA && len == UNDEFINED {
            self.fragments = true;
        }
        self.value(tag, self.pos + 8, len, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A DICOM file: preamble, meta group with the transfer syntax, then
    /// `dataset` bytes.
    fn file(ts: &str, dataset: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; 128];
        b.extend_from_slice(b"DICM");
        let mut uid = ts.as_bytes().to_vec();
        if uid.len() % 2 == 1 {
            uid.push(0);
        }
        b.extend_from_slice(&[0x02, 0x00, 0x10, 0x00, b'U', b'I']);
        b.extend_from_slice(&(uid.len() as u16).to_le_bytes());
        b.extend_from_slice(&uid);
        b.extend_from_slice(dataset);
        b
    }

    fn explicit_short(tag: (u16, u16), vr: &[u8; 2], value: &[u8]) -> Vec<u8> {
        let mut e = tag.0.to_le_bytes().to_vec();
        e.extend_from_slice(&tag.1.to_le_bytes());
        e.extend_from_slice(vr);
        e.extend_from_slice(&(value.len() as u16).to_le_bytes());
        e.extend_from_slice(value);
        e
    }

    #[test]
    fn lengths_that_fit_pass_and_one_that_cannot_is_named() {
        let ok = explicit_short((0x0010, 0x0010), b"PN", b"DOE^J ");
        assert_eq!(check_lengths(&file("1.2.840.10008.1.2.1", &ok)), Ok(()));
        // OB with a 4-byte length claiming 4 GB in a tiny file.
        let mut bad = ok.clone();
        bad.extend_from_slice(&[0xE0, 0x7F, 0x10, 0x00, b'O', b'B', 0, 0]);
        bad.extend_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
        bad.extend_from_slice(&[1, 2, 3, 4]);
        assert_eq!(
            check_lengths(&file("1.2.840.10008.1.2.1", &bad)),
            Err(((0x7FE0, 0x0010), 0xFFFF_FFF0, 4))
        );
        // Implicit VR: the same claim.
        let mut imp = vec![0xE0, 0x7F, 0x10, 0x00];
        imp.extend_from_slice(&0x1000_0000u32.to_le_bytes());
        assert!(check_lengths(&file("1.2.840.10008.1.2", &imp)).is_err());
        // Big endian: the same element, numbers byte-swapped.
        let mut be = vec![0x7F, 0xE0, 0x00, 0x10, b'O', b'B', 0, 0];
        be.extend_from_slice(&0xFFFF_FFF0u32.to_be_bytes());
        assert_eq!(
            check_lengths(&file("1.2.840.10008.1.2.2", &be)),
            Err(((0x7FE0, 0x0010), 0xFFFF_FFF0, 0))
        );
        // Deflated datasets are not followed: accepted as is.
        assert_eq!(check_lengths(&file("1.2.840.10008.1.2.1.99", &bad)), Ok(()));
        // Trailing garbage after the pixel data reads as an element of an
        // unknown VR with a 4-byte length, as dicom-rs reads it.
        let mut junk = ok.clone();
        junk.extend_from_slice(&[0xA9, 0x05, 0x59, 0x05, b'i', 4, 0, 0]);
        junk.extend_from_slice(&0x7000_0000u32.to_le_bytes());
        assert!(check_lengths(&file("1.2.840.10008.1.2.1", &junk)).is_err());
        // Not DICOM at all: nothing to say.
        assert_eq!(check_lengths(b"hello"), Ok(()));
    }
}
