//! The header file: what a vec is, in one small file. Layout in docs/FORMAT.md.
//!
//! All integers are native-endian; a byte-order mark tells a foreign byte order (EARCH) from
//! something that is not a vec at all (EFORMAT).

use crate::error::{Code, Error, Result};
use crate::schema::Schema;

/// The header's file name inside a vec's directory.
pub const HEADER_FILE: &str = "header";

pub const MAGIC: [u8; 8] = *b"MMAPVEC\0";
pub const BYTE_ORDER_MARK: u32 = 0x0A0B_0C0D;
pub const FORMAT_VERSION: u32 = 1;
/// The header file is a whole number of these.
pub const HEADER_ALIGN: usize = 4096;

pub const OFF_MAGIC: usize = 0;
pub const OFF_BOM: usize = 8;
pub const OFF_FORMAT: usize = 12;
pub const OFF_HEADER_SIZE: usize = 16;
pub const OFF_SCHEMA_LEN: usize = 20;
pub const OFF_APP_VERSION: usize = 24;
/// The row count, an f64 holding an integer: JavaScript writes it with one aligned 8-byte store,
/// so a kill never leaves half of it written.
pub const OFF_LENGTH: usize = 32;
pub const OFF_CRC: usize = 40;
pub const OFF_RESERVED: usize = 44;
pub const OFF_ARCH: usize = 48;
pub const ARCH_LEN: usize = 16;
pub const OFF_SCHEMA: usize = 64;

/// The largest schema the header holds.
pub const MAX_SCHEMA_BYTES: usize = 1 << 20;

/// What the header says, apart from the row count (which lives in the mapping).
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    pub app_version: u64,
    pub schema: Schema,
    /// The `target_arch` of the process that created the vec (for `info`; not checked).
    pub arch: String,
    pub header_size: usize,
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_ne_bytes(b[off..off + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_ne_bytes(b[off..off + 8].try_into().expect("8 bytes"))
}

/// The checksum covers everything but the row count and the checksum itself.
fn checksum(b: &[u8], schema_len: usize) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&b[..OFF_LENGTH]);
    h.update(&b[OFF_RESERVED..OFF_SCHEMA + schema_len]);
    h.finalize()
}

impl Header {
    /// Bytes of a new header file: the fixed part, the schema, zero padding to [`HEADER_ALIGN`].
    pub fn encode(schema: &Schema, app_version: u64) -> Result<Vec<u8>> {
        Self::encode_for(schema, app_version, std::env::consts::ARCH)
    }

    /// [`encode`](Self::encode) with the architecture to record (a schema change keeps the
    /// creator's).
    pub fn encode_for(schema: &Schema, app_version: u64, arch: &str) -> Result<Vec<u8>> {
        let json = schema.to_json();
        if json.len() > MAX_SCHEMA_BYTES {
            return Err(Error::new(
                Code::Invalid,
                format!(
                    "invalid schema: it takes {} bytes stored, at most {MAX_SCHEMA_BYTES}",
                    json.len()
                ),
            ));
        }
        let size = (OFF_SCHEMA + json.len()).div_ceil(HEADER_ALIGN) * HEADER_ALIGN;
        let mut b = vec![0u8; size];
        b[OFF_MAGIC..OFF_MAGIC + 8].copy_from_slice(&MAGIC);
        b[OFF_BOM..OFF_BOM + 4].copy_from_slice(&BYTE_ORDER_MARK.to_ne_bytes());
        b[OFF_FORMAT..OFF_FORMAT + 4].copy_from_slice(&FORMAT_VERSION.to_ne_bytes());
        b[OFF_HEADER_SIZE..OFF_HEADER_SIZE + 4].copy_from_slice(&(size as u32).to_ne_bytes());
        b[OFF_SCHEMA_LEN..OFF_SCHEMA_LEN + 4].copy_from_slice(&(json.len() as u32).to_ne_bytes());
        b[OFF_APP_VERSION..OFF_APP_VERSION + 8].copy_from_slice(&app_version.to_ne_bytes());
        b[OFF_LENGTH..OFF_LENGTH + 8].copy_from_slice(&0f64.to_ne_bytes());
        let arch = arch.as_bytes();
        let n = arch.len().min(ARCH_LEN);
        b[OFF_ARCH..OFF_ARCH + n].copy_from_slice(&arch[..n]);
        b[OFF_SCHEMA..OFF_SCHEMA + json.len()].copy_from_slice(json.as_bytes());
        let crc = checksum(&b, json.len());
        b[OFF_CRC..OFF_CRC + 4].copy_from_slice(&crc.to_ne_bytes());
        Ok(b)
    }

    /// Parses and checks header bytes (`file_len` is the header file's size). `what` names the
    /// file in messages. Never panics, whatever the bytes. Fails with the first problem
    /// [`Header::check`] finds.
    pub fn decode(b: &[u8], file_len: u64, what: &str) -> Result<Header> {
        let checked = Header::check(b, file_len, what);
        match (checked.problems.into_iter().next(), checked.header) {
            (Some((_, e)), _) => Err(e),
            (None, Some(h)) => Ok(h),
            (None, None) => Err(Error::new(Code::Format, format!("{what}: damaged header"))),
        }
    }

    /// Checks header bytes and reports every problem found, in the order [`Header::decode`]
    /// meets them. Checking goes on past a problem while the later fields can still be read
    /// (a bad checksum, a wrong size, non-zero padding...), and stops where they cannot (not a
    /// vec, another byte order, an unknown format version). Never panics, whatever the bytes.
    ///
    /// Each problem comes with the name of its check, stable for programs to match on:
    /// `header-magic`, `byte-order`, `format-version`, `header-size`, `schema-length`,
    /// `header-checksum`, `header-reserved`, `header-padding`, `schema`, `column-file-name`.
    pub fn check(b: &[u8], file_len: u64, what: &str) -> Checked {
        let mut problems = Vec::new();
        let done = |problems: Vec<(&'static str, Error)>| Checked {
            header: None,
            problems,
        };
        let fmt = |m: String| Error::new(Code::Format, format!("{what}: {m}"));
        if b.len() < OFF_SCHEMA {
            problems.push(("header-size", fmt(format!(
                "not an mmapvec header: it is {} bytes long, a header has at least {OFF_SCHEMA}; the file is damaged or belongs to something else",
                b.len()
            ))));
            return done(problems);
        }
        if b[..8] != MAGIC {
            problems.push((
                "header-magic",
                fmt(format!(
                    "not an mmapvec header: expected the magic bytes {:?}, found {:?}",
                    String::from_utf8_lossy(&MAGIC),
                    String::from_utf8_lossy(&b[..8])
                )),
            ));
            return done(problems);
        }
        let bom = u32_at(b, OFF_BOM);
        if bom == BYTE_ORDER_MARK.swap_bytes() {
            problems.push(("byte-order", Error::new(
                Code::Arch,
                format!(
                    "{what}: written on a machine of the other byte order; the on-disk bytes are the in-memory bytes, so convert it there (export it, e.g. as Arrow IPC) and import it here"
                ),
            )));
            return done(problems);
        }
        if bom != BYTE_ORDER_MARK {
            problems.push((
                "byte-order",
                fmt(format!(
                    "damaged header: byte-order mark is {bom:#x}, expected {BYTE_ORDER_MARK:#x}"
                )),
            ));
        }
        let format = u32_at(b, OFF_FORMAT);
        if format != FORMAT_VERSION {
            problems.push(("format-version", fmt(format!(
                "format version {format} is not supported by this mmapvec (it reads version {FORMAT_VERSION}); use the mmapvec version that wrote it"
            ))));
            return done(problems);
        }
        let size = u32_at(b, OFF_HEADER_SIZE) as usize;
        let schema_len = u32_at(b, OFF_SCHEMA_LEN) as usize;
        if size < OFF_SCHEMA
            || !size.is_multiple_of(HEADER_ALIGN)
            || size as u64 != file_len
            || size > b.len()
        {
            problems.push((
                "header-size",
                fmt(format!(
                    "damaged header: it says it is {size} bytes long but the file has {file_len}"
                )),
            ));
        }
        if schema_len == 0 || schema_len > MAX_SCHEMA_BYTES || OFF_SCHEMA + schema_len > size {
            problems.push((
                "schema-length",
                fmt(format!(
                    "damaged header: schema length {schema_len} does not fit a {size}-byte header"
                )),
            ));
        }
        // What follows reads the schema's bytes, which must at least be there (a problem was
        // reported above when they are not).
        if schema_len == 0 || OFF_SCHEMA + schema_len > b.len() {
            return done(problems);
        }
        let stored = u32_at(b, OFF_CRC);
        let actual = checksum(b, schema_len);
        if stored != actual {
            problems.push((
                "header-checksum",
                fmt(format!(
                    "damaged header: checksum is {stored:#010x}, the bytes give {actual:#010x}"
                )),
            ));
        }
        if u32_at(b, OFF_RESERVED) != 0 {
            problems.push((
                "header-reserved",
                fmt("damaged header: the reserved field is not zero".to_string()),
            ));
        }
        let padding = b
            .get(OFF_SCHEMA + schema_len..size.min(b.len()))
            .unwrap_or_default();
        if padding.iter().any(|&x| x != 0) {
            problems.push((
                "header-padding",
                fmt("damaged header: the padding after the schema is not zero".to_string()),
            ));
        }
        let schema: Schema = match serde_json::from_slice(&b[OFF_SCHEMA..OFF_SCHEMA + schema_len]) {
            Ok(s) => s,
            Err(e) => {
                problems.push((
                    "schema",
                    fmt(format!("damaged header: stored schema does not parse ({e})")),
                ));
                return done(problems);
            }
        };
        if let Err(e) = schema.validate() {
            problems.push((
                "schema",
                fmt(format!(
                    "damaged header: stored schema is not valid ({})",
                    e.message
                )),
            ));
        }
        for (i, c) in schema.columns.iter().enumerate() {
            if schema.columns[..i].iter().any(|o| o.file == c.file) {
                problems.push((
                    "column-file-name",
                    fmt(format!("damaged header: two columns name the file {:?}", c.file)),
                ));
            } else if !valid_file_name(&c.file) {
                problems.push((
                    "column-file-name",
                    fmt(format!(
                        "damaged header: column '{}' names the file {:?}",
                        c.name, c.file
                    )),
                ));
            }
        }
        let arch_raw = &b[OFF_ARCH..OFF_ARCH + ARCH_LEN];
        let arch_end = arch_raw.iter().position(|&c| c == 0).unwrap_or(ARCH_LEN);
        Checked {
            header: Some(Header {
                app_version: u64_at(b, OFF_APP_VERSION),
                schema,
                arch: String::from_utf8_lossy(&arch_raw[..arch_end]).into_owned(),
                header_size: size,
            }),
            problems,
        }
    }
}

/// What [`Header::check`] found: the header when its fields could be read (possibly with
/// problems), and every problem.
#[derive(Debug)]
pub struct Checked {
    pub header: Option<Header>,
    /// Each problem with the name of the check that found it (see [`Header::check`]).
    pub problems: Vec<(&'static str, Error)>,
}

/// Reads a header file's bytes (at most what a header can hold) through the file, never
/// through a mapping (which would fault on a truncated file); returns them with the file's size.
pub fn read_bytes(file: &std::fs::File, hp: &std::path::Path) -> Result<(Vec<u8>, u64)> {
    use std::io::{Read, Seek, SeekFrom};
    let size = file
        .metadata()
        .map_err(|e| Error::io(&e, hp, "reading the header"))?
        .len();
    let limit = (OFF_SCHEMA + MAX_SCHEMA_BYTES + HEADER_ALIGN) as u64;
    if size > limit {
        return Err(Error::new(
            Code::Format,
            format!(
                "{}: damaged header: {size} bytes, a header has at most {limit}",
                hp.display()
            ),
        ));
    }
    let mut bytes = Vec::with_capacity(size as usize);
    let mut reader = file;
    reader
        .seek(SeekFrom::Start(0))
        .and_then(|_| reader.take(size).read_to_end(&mut bytes))
        .map_err(|e| Error::io(&e, hp, "reading the header"))?;
    Ok((bytes, size))
}

/// Column files are plain names inside the vec's directory, never paths.
pub(crate) fn valid_file_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name != "."
        && name != ".."
        && name != HEADER_FILE
        && name != crate::live::LIVE_FILE
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'_' || c == b'-')
}

/// The raw row count of header bytes at least [`OFF_SCHEMA`] long.
pub fn stored_length(b: &[u8]) -> f64 {
    f64::from_ne_bytes(b[OFF_LENGTH..OFF_LENGTH + 8].try_into().expect("8 bytes"))
}

/// Reads a stored row count: an integer-valued, finite, non-negative f64.
pub fn decode_length(raw: f64, what: &str) -> Result<u64> {
    if raw.is_finite() && raw >= 0.0 && raw.fract() == 0.0 && raw < (1u64 << 53) as f64 {
        Ok(raw as u64)
    } else {
        Err(Error::new(
            Code::Format,
            format!("{what}: damaged header: the row count is {raw}, not a whole number of rows"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Schema {
        let mut s = Schema::parse_request(
            r#"{"scalar":false,"columns":[{"name":"pos","type":"f32","count":3},{"name":"alive","type":"bool","count":1}]}"#,
        )
        .unwrap();
        s.assign_files();
        s
    }

    #[test]
    fn round_trips() {
        let b = Header::encode(&schema(), 7).unwrap();
        assert_eq!(b.len(), HEADER_ALIGN);
        let h = Header::decode(&b, b.len() as u64, "h").unwrap();
        assert_eq!(h.app_version, 7);
        assert_eq!(h.schema, schema());
        assert_eq!(h.arch, std::env::consts::ARCH);
    }

    #[test]
    fn the_row_count_is_outside_the_checksum() {
        let mut b = Header::encode(&schema(), 0).unwrap();
        b[OFF_LENGTH..OFF_LENGTH + 8].copy_from_slice(&12345f64.to_ne_bytes());
        assert!(Header::decode(&b, b.len() as u64, "h").is_ok());
    }

    #[test]
    fn every_truncation_is_eformat() {
        let b = Header::encode(&schema(), 0).unwrap();
        for n in 0..b.len() {
            let e = Header::decode(&b[..n], n as u64, "h").unwrap_err();
            assert_eq!(e.code, Code::Format, "truncated to {n}");
        }
    }

    #[test]
    fn every_flipped_bit_outside_the_row_count_is_detected() {
        let b = Header::encode(&schema(), 0).unwrap();
        let used = OFF_SCHEMA + u32_at(&b, OFF_SCHEMA_LEN) as usize;
        for i in (0..used).filter(|i| !(OFF_LENGTH..OFF_LENGTH + 8).contains(i)) {
            for bit in 0..8 {
                let mut d = b.clone();
                d[i] ^= 1 << bit;
                let e = Header::decode(&d, d.len() as u64, "h").unwrap_err();
                assert!(
                    matches!(e.code, Code::Format | Code::Arch),
                    "byte {i} bit {bit}: {e}"
                );
            }
        }
    }

    #[test]
    fn foreign_byte_order_is_earch() {
        let mut b = Header::encode(&schema(), 0).unwrap();
        let swapped = BYTE_ORDER_MARK.swap_bytes().to_ne_bytes();
        b[OFF_BOM..OFF_BOM + 4].copy_from_slice(&swapped);
        assert_eq!(
            Header::decode(&b, b.len() as u64, "h").unwrap_err().code,
            Code::Arch
        );
    }

    /// Regression: padding, the reserved field and duplicate column files were accepted when
    /// the checksum matched (found by the damaged-files suite).
    #[test]
    fn crafted_headers_with_a_valid_checksum_are_still_checked() {
        let good = Header::encode(&schema(), 0).unwrap();
        let schema_len = u32_at(&good, OFF_SCHEMA_LEN) as usize;
        let reseal = |mut b: Vec<u8>| {
            let crc = checksum(&b, u32_at(&b, OFF_SCHEMA_LEN) as usize);
            b[OFF_CRC..OFF_CRC + 4].copy_from_slice(&crc.to_ne_bytes());
            b
        };
        let mut padded = good.clone();
        padded[OFF_SCHEMA + schema_len + 3] = 1;
        let mut reserved = good.clone();
        reserved[OFF_RESERVED] = 1;
        let mut dup = schema();
        dup.columns[1].file = dup.columns[0].file.clone();
        let mut unknown = schema().to_json();
        unknown.insert_str(1, r#""extra":1,"#);
        let mut with_unknown = good.clone();
        with_unknown[OFF_SCHEMA_LEN..OFF_SCHEMA_LEN + 4]
            .copy_from_slice(&(unknown.len() as u32).to_ne_bytes());
        with_unknown[OFF_SCHEMA..OFF_SCHEMA + unknown.len()].copy_from_slice(unknown.as_bytes());
        for (what, b) in [
            ("padding", padded),
            ("reserved", reseal(reserved)),
            ("duplicate file", Header::encode(&dup, 0).unwrap()),
            ("unknown key", reseal(with_unknown)),
        ] {
            let e = Header::decode(&b, b.len() as u64, "h").unwrap_err();
            assert_eq!(e.code, Code::Format, "{what}: {e}");
        }
    }

    #[test]
    fn row_counts_must_be_whole() {
        assert_eq!(decode_length(3.0, "h").unwrap(), 3);
        for bad in [-1.0, 0.5, f64::NAN, f64::INFINITY, 1e300, (1u64 << 53) as f64] {
            assert_eq!(decode_length(bad, "h").unwrap_err().code, Code::Format);
        }
    }
}
