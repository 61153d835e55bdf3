// SPDX-License-Identifier: GPL-2.0

//! PCI device names as users write them to the attach interface.
//!
//! The kernel names a PCI device `DDDD:BB:DD.F` (domain, bus, device, function, in lowercase
//! hexadecimal, `0000:00:04.0`). Users also write the short form `BB:DD.F` (domain 0), upper
//! case, or a trailing newline (`echo`). [`PciName::parse`] accepts those and gives the
//! canonical name, so that lookups and duplicate checks compare like with like.

use core::fmt;

/// Why a name was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameError {
    /// Nothing but white space.
    Empty,
    /// Not of the form `[DDDD:]BB:DD.F` with hexadecimal numbers in range.
    Malformed,
}

/// A PCI device address: domain, bus, device (0..32) and function (0..8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PciName {
    /// PCI domain (segment): 16 bits on most machines, more behind a VMD controller
    /// (`10000:e1:00.0`).
    pub domain: u32,
    /// Bus number.
    pub bus: u8,
    /// Device (slot) number, below 32.
    pub device: u8,
    /// Function number, below 8.
    pub function: u8,
}

/// Parses 1 to `max_digits` (at most 8) hexadecimal digits.
fn hex(s: &[u8], max_digits: usize) -> Result<u32, NameError> {
    if s.is_empty() || s.len() > max_digits.min(8) {
        return Err(NameError::Malformed);
    }
    let mut v: u32 = 0;
    for &c in s {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => return Err(NameError::Malformed),
        };
        v = (v << 4) | u32::from(d);
    }
    Ok(v)
}

/// `s` without leading and trailing ASCII white space.
pub fn trim(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &s[start..end]
}

impl PciName {
    /// Parses `[DDDD:]BB:DD.F`, ignoring surrounding white space.
    pub fn parse(s: &[u8]) -> Result<Self, NameError> {
        let s = trim(s);
        if s.is_empty() {
            return Err(NameError::Empty);
        }
        let mut parts = s.split(|&c| c == b':');
        let (a, b, c) = (parts.next(), parts.next(), parts.next());
        let (domain, bus, devfn) = match (a, b, c, parts.next()) {
            (Some(d), Some(b), Some(df), None) => (hex(d, 8)?, b, df),
            (Some(b), Some(df), None, None) => (0, b, df),
            _ => return Err(NameError::Malformed),
        };
        let mut df = devfn.split(|&c| c == b'.');
        let (Some(dev), Some(func), None) = (df.next(), df.next(), df.next()) else {
            return Err(NameError::Malformed);
        };
        let bus = u8::try_from(hex(bus, 2)?).map_err(|_| NameError::Malformed)?;
        let device = hex(dev, 2)?;
        let function = hex(func, 1)?;
        if device >= 32 || function >= 8 {
            return Err(NameError::Malformed);
        }
        Ok(Self {
            domain,
            bus,
            device: device as u8,
            function: function as u8,
        })
    }

    /// The canonical name as the kernel writes it (`%04x:%02x:%02x.%d`: `0000:00:04.0`,
    /// `10000:e1:00.0`), NUL-terminated.
    pub fn to_cstr_bytes(&self) -> CName {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = CName {
            buf: [0; 18],
            len: 0,
        };
        let d = self.domain;
        // At most 8 + 1 + 2 + 1 + 2 + 1 + 1 digits and separators, and the NUL: 17 bytes.
        for (v, digits, sep) in [
            (d, ((32 - d.leading_zeros()).div_ceil(4)).max(4), b':'),
            (u32::from(self.bus), 2, b':'),
            (u32::from(self.device), 2, b'.'),
            (u32::from(self.function), 1, 0),
        ] {
            for i in (0..digits).rev() {
                out.buf[out.len] = HEX[((v >> (4 * i)) & 0xf) as usize];
                out.len += 1;
            }
            out.buf[out.len] = sep;
            out.len += 1;
        }
        out
    }
}

/// A canonical PCI name and its NUL ([`PciName::to_cstr_bytes`]).
pub struct CName {
    buf: [u8; 18],
    len: usize,
}

impl CName {
    /// The name with its terminating NUL.
    pub fn with_nul(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// The name alone.
    pub fn name(&self) -> &[u8] {
        &self.buf[..self.len - 1]
    }
}

impl fmt::Display for PciName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04x}:{:02x}:{:02x}.{:x}",
            self.domain, self.bus, self.device, self.function
        )
    }
}

/// A name as given by a user, for a log line: at most 63 bytes, trimmed, anything but printable
/// ASCII shown as `\xNN`.
pub struct Shown<'a>(pub &'a [u8]);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = trim(self.0);
        for &c in t.iter().take(63) {
            if (0x20..0x7f).contains(&c) && c != b'\\' {
                write!(f, "{}", c as char)?;
            } else {
                write!(f, "\\x{c:02x}")?;
            }
        }
        if t.len() > 63 {
            write!(f, "...")?;
        }
        Ok(())
    }
}

/// The non-empty entries of a comma-separated list (the `attach` module parameter).
pub fn list(s: &[u8]) -> impl Iterator<Item = &[u8]> {
    s.split(|&c| c == b',').map(trim).filter(|e| !e.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::format;
    use std::vec::Vec;

    #[test]
    fn canonical_forms() {
        let n = PciName::parse(b"0000:00:04.0\n").unwrap();
        assert_eq!(
            n,
            PciName {
                domain: 0,
                bus: 0,
                device: 4,
                function: 0
            }
        );
        assert_eq!(cname(b"0000:00:04.0\n"), b"0000:00:04.0\0");
        assert_eq!(cname(b" 1:A3:1f.7 "), b"0001:a3:1f.7\0");
        let n = PciName::parse(b" 1:A3:1f.7 ").unwrap();
        assert_eq!(format!("{n}"), "0001:a3:1f.7");
        assert_eq!(cname(b"00:05.0"), b"0000:00:05.0\0");
        // Behind a VMD controller the domain has more than 4 digits; leading zeros are dropped.
        assert_eq!(cname(b"10000:E1:00.0"), b"10000:e1:00.0\0");
        let vmd = PciName::parse(b"10000:E1:00.0").unwrap();
        assert_eq!(format!("{vmd}"), "10000:e1:00.0");
        assert_eq!(cname(b"ffffffff:ff:1f.7"), b"ffffffff:ff:1f.7\0");
        assert_eq!(cname(b"00000:00:04.0"), b"0000:00:04.0\0");
    }

    /// The canonical name, with its NUL, of a name that parses.
    fn cname(s: &[u8]) -> Vec<u8> {
        PciName::parse(s)
            .unwrap()
            .to_cstr_bytes()
            .with_nul()
            .to_vec()
    }

    #[test]
    fn refused() {
        assert_eq!(PciName::parse(b""), Err(NameError::Empty));
        assert_eq!(PciName::parse(b" \n"), Err(NameError::Empty));
        for bad in [
            &b"bogus"[..],
            b"0000:00:20.0",
            b"0000:00:04.8",
            b"100000000:00:04.0",
            b"0000:100:04.0",
            b"0000:00:04",
            b"0000:00:04.0.1",
            b"0000:00:04.0:1",
            b":00:04.0",
            b"0000:00:.0",
            b"0000:0g:04.0",
            b"0000 00:04.0",
        ] {
            assert_eq!(PciName::parse(bad), Err(NameError::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn shown() {
        assert_eq!(format!("{}", Shown(b" 0000:00:04.0\n")), "0000:00:04.0");
        assert_eq!(format!("{}", Shown(b"a\x01\\b\xff")), "a\\x01\\x5cb\\xff");
        let long = [b'x'; 100];
        assert_eq!(
            format!("{}", Shown(&long)),
            format!("{}...", "x".repeat(63))
        );
    }

    #[test]
    fn lists() {
        let v: Vec<_> = list(b"0000:00:04.0, 00:05.0,,\n").collect();
        assert_eq!(v, [&b"0000:00:04.0"[..], b"00:05.0"]);
        assert_eq!(list(b"").count(), 0);
    }

    proptest::proptest! {
        #[test]
        fn round_trip(domain: u32, bus: u8, device in 0u8..32, function in 0u8..8) {
            let n = PciName { domain, bus, device, function };
            let s = format!("{n}");
            proptest::prop_assert_eq!(PciName::parse(s.as_bytes()), Ok(n));
            let c = n.to_cstr_bytes();
            proptest::prop_assert_eq!(c.name(), s.as_bytes());
        }

        #[test]
        fn never_panics(s in proptest::collection::vec(proptest::num::u8::ANY, 0..20)) {
            let _ = PciName::parse(&s);
        }
    }
}
