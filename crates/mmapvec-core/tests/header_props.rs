//! Property tests of the header parser: whatever the bytes, `Header::decode` and `decode_length`
//! never panic and only ever fail with EFORMAT or EARCH; every change to a checked byte of a
//! valid header is refused; every valid schema survives an encode/decode round trip.
//!
//! Layout of the header: docs/FORMAT.md.

use std::collections::BTreeSet;

use mmapvec_core::header::{
    decode_length, Header, BYTE_ORDER_MARK, FORMAT_VERSION, HEADER_ALIGN, MAGIC, MAX_SCHEMA_BYTES, OFF_BOM,
    OFF_CRC, OFF_FORMAT, OFF_HEADER_SIZE, OFF_LENGTH, OFF_RESERVED, OFF_SCHEMA, OFF_SCHEMA_LEN,
};
use mmapvec_core::schema::{COLUMN_ALIGN, MAX_COLUMNS, MAX_COUNT, MAX_NAME, MAX_OFFSET};
use mmapvec_core::{Code, Column, ElemType, Error, Schema};
use proptest::prelude::*;
use proptest::sample::select;

const TYPES: [ElemType; 11] = [
    ElemType::I8,
    ElemType::U8,
    ElemType::I16,
    ElemType::U16,
    ElemType::I32,
    ElemType::U32,
    ElemType::I64,
    ElemType::U64,
    ElemType::F32,
    ElemType::F64,
    ElemType::Bool,
];

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_ne_bytes(b[off..off + 4].try_into().unwrap())
}

fn put_u32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_ne_bytes());
}

/// The checksum as docs/FORMAT.md defines it: bytes 0..32 and 44..(64 + schema length).
fn crc(b: &[u8], schema_len: usize) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&b[..OFF_LENGTH]);
    h.update(&b[OFF_RESERVED..OFF_SCHEMA + schema_len]);
    h.finalize()
}

/// Bytes `[0, 64 + schema length)` but the row count: what the checksum and the checks cover.
fn checked_len(b: &[u8]) -> usize {
    OFF_SCHEMA + u32_at(b, OFF_SCHEMA_LEN) as usize
}

fn decode(b: &[u8]) -> Result<Header, Error> {
    Header::decode(b, b.len() as u64, "header")
}

fn assert_refused(r: Result<Header, Error>) -> Result<(), TestCaseError> {
    match r {
        Ok(h) => Err(TestCaseError::fail(format!("accepted: {h:?}"))),
        Err(e) => {
            prop_assert!(matches!(e.code, Code::Format | Code::Arch), "{e}");
            Ok(())
        }
    }
}

/// A failure, if any, must be EFORMAT or EARCH; the message names the file.
fn assert_format_or_ok(r: &Result<Header, Error>) -> Result<(), TestCaseError> {
    if let Err(e) = r {
        prop_assert!(matches!(e.code, Code::Format | Code::Arch), "{e}");
        prop_assert!(e.message.starts_with("header: "), "{e}");
    }
    Ok(())
}

/// Column names: plain identifiers, and any text (quotes, backslashes, control characters,
/// non-ASCII) up to the byte limit, which the JSON encoding must carry unchanged.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-zA-Z_][a-zA-Z0-9_]{0,24}",
        2 => "(?s).{1,40}",
        1 => "[\"\\\\/\\x00-\\x1f\u{7f}\u{e9}\u{1F600}]{1,12}",
        1 => "[a-z\u{e9}\u{4e2d}]{60,120}".prop_filter("at most MAX_NAME bytes", |s| s.len() <= MAX_NAME),
        1 => "[a-z]{255}",
    ]
}

fn count() -> impl Strategy<Value = u32> {
    prop_oneof![8 => 1u32..=16, 2 => 1u32..=MAX_COUNT, 1 => Just(MAX_COUNT)]
}

fn column() -> impl Strategy<Value = (String, ElemType, u32)> {
    (name(), select(TYPES.to_vec()), count())
}

fn make_schema(scalar: bool, cols: Vec<(String, ElemType, u32)>) -> Schema {
    let mut s = Schema {
        scalar,
        columns: cols
            .into_iter()
            .map(|(name, ty, count)| Column {
                name,
                ty,
                count,
                file: String::new(),
                offset: 0,
            })
            .collect(),
    };
    s.assign_files();
    s
}

/// A valid schema with files assigned: a scalar one, 1 to 8 fields with names of every kind, or
/// up to 1024 plainly named fields (enough that the offsets wrap around 4096 and the header
/// spans many pages).
fn schema() -> impl Strategy<Value = Schema> {
    let named = proptest::collection::vec(column(), 1..=8).prop_map(|cols| {
        let mut seen = BTreeSet::new();
        let cols = cols.into_iter().filter(|c| seen.insert(c.0.clone())).collect();
        make_schema(false, cols)
    });
    let wide = |max: usize| {
        (
            proptest::collection::vec((select(TYPES.to_vec()), count()), 1..=max),
            "[a-z]{0,8}",
        )
            .prop_map(|(cols, stem)| {
                let cols = cols
                    .into_iter()
                    .enumerate()
                    .map(|(i, (ty, n))| (format!("{stem}{i}"), ty, n));
                make_schema(false, cols.collect())
            })
    };
    prop_oneof![
        2 => (select(TYPES.to_vec()), count()).prop_map(|(ty, n)| make_schema(true, vec![("value".into(), ty, n)])),
        12 => named,
        2 => wide(100),
        1 => wide(MAX_COLUMNS),
    ]
}

/// A valid header: its schema, application version and bytes.
fn valid_header() -> impl Strategy<Value = (Schema, u64, Vec<u8>)> {
    (schema(), any::<u64>()).prop_map(|(s, v)| {
        let b = Header::encode(&s, v).unwrap();
        (s, v, b)
    })
}

/// A stored schema as JSON, possibly invalid: file names and offsets are arbitrary here.
fn stored_schema_json() -> impl Strategy<Value = String> {
    let file = prop_oneof![
        "c[0-9]{1,4}\\.col",
        "[a-zA-Z0-9._-]{0,70}",
        Just("header".to_string()),
        Just("..".to_string()),
        Just(".".to_string()),
        "(\\.\\./|/)?[a-z]{1,8}(/[a-z]{1,8})?",
        "(?s).{0,8}",
    ];
    let offset = prop_oneof![
        (0..=MAX_OFFSET / COLUMN_ALIGN).prop_map(|k| k * COLUMN_ALIGN),
        any::<u32>(),
    ];
    let col = (name(), select(TYPES.to_vec()), 0u32..=MAX_COUNT + 2, file, offset);
    (any::<bool>(), proptest::collection::vec(col, 0..6)).prop_map(|(scalar, cols)| {
        let cols: Vec<serde_json::Value> = cols
            .into_iter()
            .map(|(name, ty, count, file, offset)| {
                serde_json::json!({ "name": name, "type": ty, "count": count, "file": file, "offset": offset })
            })
            .collect();
        serde_json::json!({ "scalar": scalar, "columns": cols }).to_string()
    })
}

/// A header whose fixed fields and checksum are right around an arbitrary schema text, so that
/// decoding reaches the schema checks.
fn header_around(json: &[u8]) -> Vec<u8> {
    let size = (OFF_SCHEMA + json.len()).div_ceil(HEADER_ALIGN) * HEADER_ALIGN;
    let mut b = vec![0u8; size];
    b[..8].copy_from_slice(&MAGIC);
    put_u32(&mut b, OFF_BOM, BYTE_ORDER_MARK);
    put_u32(&mut b, OFF_FORMAT, FORMAT_VERSION);
    put_u32(&mut b, OFF_HEADER_SIZE, size as u32);
    put_u32(&mut b, OFF_SCHEMA_LEN, json.len() as u32);
    b[OFF_SCHEMA..OFF_SCHEMA + json.len()].copy_from_slice(json);
    let c = crc(&b, json.len());
    put_u32(&mut b, OFF_CRC, c);
    b
}

/// What a column file name in a stored schema may be (docs/FORMAT.md: a plain name).
fn plain_file_name(f: &str) -> bool {
    !f.is_empty()
        && f.len() <= 64
        && f != "."
        && f != ".."
        && f != "header"
        && f.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"._-".contains(&c))
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Arbitrary bytes and an arbitrary file size: no panic; Ok, or EFORMAT / EARCH.
    #[test]
    fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..9000), len in any::<u64>(), same in any::<bool>()) {
        let file_len = if same { b.len() as u64 } else { len };
        assert_format_or_ok(&Header::decode(&b, file_len, "header"))?;
    }

    /// Arbitrary bytes after a right magic, byte-order mark, version and size: the parser gets
    /// past the first checks and still never panics.
    #[test]
    fn arbitrary_bytes_behind_valid_fixed_fields_never_panic(
        mut b in proptest::collection::vec(any::<u8>(), OFF_SCHEMA..9000),
        schema_len in prop_oneof![any::<u32>(), 0u32..9000],
        pages in 1usize..3,
    ) {
        b.resize(b.len().max(pages * HEADER_ALIGN), 0);
        b.truncate(pages * HEADER_ALIGN);
        b[..8].copy_from_slice(&MAGIC);
        put_u32(&mut b, OFF_BOM, BYTE_ORDER_MARK);
        put_u32(&mut b, OFF_FORMAT, FORMAT_VERSION);
        let size = b.len() as u32;
        put_u32(&mut b, OFF_HEADER_SIZE, size);
        put_u32(&mut b, OFF_SCHEMA_LEN, schema_len);
        let r = decode(&b);
        assert_format_or_ok(&r)?;
        // Passing needs the checksum of random bytes to match: a 2^-32 chance, never seen.
        prop_assert!(r.is_err());
        // With the checksum made right, only the schema checks stand in the way.
        let sl = schema_len as usize;
        if sl > 0 && sl <= MAX_SCHEMA_BYTES && OFF_SCHEMA + sl <= b.len() {
            let c = crc(&b, sl);
            put_u32(&mut b, OFF_CRC, c);
            let r = decode(&b);
            assert_format_or_ok(&r)?;
            if let Ok(h) = r {
                prop_assert!(h.schema.validate().is_ok());
            }
        }
    }

    /// A stored schema of any shape, with every other field right: accepted exactly when it
    /// parses, is valid and names only plain files, and then read back as stored.
    #[test]
    fn stored_schemas_are_checked(json in stored_schema_json()) {
        let b = header_around(json.as_bytes());
        let r = decode(&b);
        assert_format_or_ok(&r)?;
        let parsed: Option<Schema> = serde_json::from_str(&json).ok();
        let acceptable = parsed.as_ref().is_some_and(|s| {
            s.validate().is_ok() && s.columns.iter().all(|c| plain_file_name(&c.file))
        });
        prop_assert_eq!(r.is_ok(), acceptable, "{}: {:?}", json, r);
        if let (Ok(h), Some(s)) = (r, parsed) {
            prop_assert_eq!(h.schema, s);
        }
    }

    /// Arbitrary bytes patched over a valid header: no panic; Ok, or EFORMAT / EARCH.
    #[test]
    fn patched_valid_headers_never_panic(
        (_, _, mut b) in valid_header(),
        patches in proptest::collection::vec((any::<prop::sample::Index>(), proptest::collection::vec(any::<u8>(), 1..9)), 1..6),
    ) {
        let used = checked_len(&b);
        for (at, bytes) in patches {
            let at = at.index(used);
            let end = (at + bytes.len()).min(b.len());
            b[at..end].copy_from_slice(&bytes[..end - at]);
        }
        assert_format_or_ok(&decode(&b))?;
    }

    /// Every valid schema, with any application version, round-trips through encode/decode.
    #[test]
    fn valid_schemas_round_trip((s, v, b) in valid_header()) {
        prop_assert!(s.validate().is_ok());
        prop_assert!(b.len().is_multiple_of(HEADER_ALIGN));
        prop_assert_eq!(u32_at(&b, OFF_HEADER_SIZE) as usize, b.len());
        let h = decode(&b).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&h.schema, &s);
        prop_assert!(h.schema.same_fields(&s));
        prop_assert_eq!(h.app_version, v);
        prop_assert_eq!(h.header_size, b.len());
        prop_assert_eq!(h.arch.as_str(), std::env::consts::ARCH);
        // A new header holds no rows.
        let raw = f64::from_ne_bytes(b[OFF_LENGTH..OFF_LENGTH + 8].try_into().unwrap());
        prop_assert_eq!(decode_length(raw, "header").unwrap(), 0);
    }

    /// A valid header with one byte changed anywhere the checks cover (everything up to the
    /// end of the schema, but the row count) is refused with EFORMAT.
    #[test]
    fn any_changed_checked_byte_is_refused(
        (_, _, b) in valid_header(),
        at in any::<prop::sample::Index>(),
        xor in 1u8..=255,
    ) {
        let used = checked_len(&b);
        let candidates = used - 8;
        let mut i = at.index(candidates);
        if i >= OFF_LENGTH {
            i += 8;
        }
        let mut d = b.clone();
        d[i] ^= xor;
        let r = decode(&d);
        assert_refused(r.clone())?;
        prop_assert_eq!(r.unwrap_err().code, Code::Format, "byte {} ^ {:#x}", i, xor);
    }

    /// Up to four changed bytes within one 32-bit burst of the checked range: a CRC-32 catches
    /// every such burst, so they are refused too (EARCH only for the swapped byte-order mark).
    #[test]
    fn any_changed_burst_is_refused(
        (_, _, b) in valid_header(),
        at in any::<prop::sample::Index>(),
        xors in proptest::collection::vec(any::<u8>(), 4),
    ) {
        prop_assume!(xors.iter().any(|&x| x != 0));
        let used = checked_len(&b);
        let starts: Vec<usize> = (0..=used - 4).filter(|&i| i + 4 <= OFF_LENGTH || i >= OFF_LENGTH + 8).collect();
        let i = *at.get(&starts);
        let mut d = b.clone();
        for (k, x) in xors.iter().enumerate() {
            d[i + k] ^= x;
        }
        let r = decode(&d);
        assert_refused(r.clone())?;
        let swapped = u32_at(&d, OFF_BOM) == BYTE_ORDER_MARK.swap_bytes();
        prop_assert_eq!(r.unwrap_err().code, if swapped { Code::Arch } else { Code::Format });
    }

    /// The row count is outside the checksum: any bytes there leave the rest of the header as
    /// it was, and `decode_length` decides about the count alone.
    #[test]
    fn the_row_count_is_not_checked_by_decode((s, v, b) in valid_header(), raw in any::<u64>()) {
        let mut d = b.clone();
        d[OFF_LENGTH..OFF_LENGTH + 8].copy_from_slice(&raw.to_ne_bytes());
        let h = decode(&d).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(h.schema, s);
        prop_assert_eq!(h.app_version, v);
    }

    /// The zero padding past the schema is covered by neither the checksum nor a check
    /// (docs/FORMAT.md lists what is checked): a changed padding byte never panics, and if the
    /// header is accepted it reads as before.
    #[test]
    fn changed_padding_reads_as_before((s, v, b) in valid_header(), at in any::<prop::sample::Index>(), x in 1u8..=255) {
        let used = checked_len(&b);
        prop_assume!(used < b.len());
        let mut d = b.clone();
        d[used + at.index(b.len() - used)] ^= x;
        let r = decode(&d);
        assert_format_or_ok(&r)?;
        if let Ok(h) = r {
            prop_assert_eq!(h.schema, s);
            prop_assert_eq!(h.app_version, v);
        }
    }

    /// Every truncation of a valid header is EFORMAT, and so is a file size that differs from
    /// the header's own.
    #[test]
    fn truncations_and_wrong_sizes_are_refused(
        (_, _, b) in valid_header(),
        cut in any::<prop::sample::Index>(),
        len in any::<u64>(),
    ) {
        let n = cut.index(b.len());
        let e = decode(&b[..n]).unwrap_err();
        prop_assert_eq!(e.code, Code::Format);
        // Bytes are all there but the file is said to be another size.
        prop_assume!(len != b.len() as u64);
        let e = Header::decode(&b, len, "header").unwrap_err();
        prop_assert_eq!(e.code, Code::Format);
        // More bytes than the header says it has (a grown file) is refused too.
        let mut longer = b.clone();
        longer.resize(b.len() + HEADER_ALIGN, 0);
        prop_assert_eq!(decode(&longer).unwrap_err().code, Code::Format);
    }

    /// Any f64: no panic; accepted exactly when it is a whole number from 0 to 2^53, and then
    /// read as that number.
    #[test]
    fn row_counts(bits in any::<u64>(), small in -3i64..(1 << 20), frac in 0.0f64..1.0) {
        for raw in [f64::from_bits(bits), small as f64, small as f64 + frac] {
            let whole = raw.is_finite() && raw >= 0.0 && raw.fract() == 0.0 && raw <= (1u64 << 53) as f64;
            match decode_length(raw, "header") {
                Ok(n) => {
                    prop_assert!(whole, "{} accepted", raw);
                    prop_assert_eq!(n as f64, raw);
                }
                Err(e) => {
                    prop_assert!(!whole, "{} refused", raw);
                    prop_assert_eq!(e.code, Code::Format);
                    prop_assert!(e.message.starts_with("header: "), "{}", e);
                }
            }
        }
    }
}

#[test]
fn special_row_counts() {
    for ok in [0.0, -0.0, 1.0, 300.0, 9_007_199_254_740_991.0] {
        assert!(decode_length(ok, "h").is_ok(), "{ok}");
    }
    for bad in [
        f64::NAN,
        -f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        -1.0,
        0.5,
        1e300,
        f64::MIN_POSITIVE,
        f64::from_bits(1),
        9_007_199_254_740_994.0,
    ] {
        assert_eq!(decode_length(bad, "h").unwrap_err().code, Code::Format, "{bad}");
    }
}

#[test]
fn the_largest_schema_fits_and_one_more_byte_does_not_decode() {
    // 1024 columns with 255-byte names: the largest valid schema still encodes and decodes.
    let cols = (0..MAX_COLUMNS)
        .map(|i| (format!("{i:0>255}"), ElemType::F64, MAX_COUNT))
        .collect();
    let s = make_schema(false, cols);
    let b = Header::encode(&s, u64::MAX).unwrap();
    assert!(checked_len(&b) <= OFF_SCHEMA + MAX_SCHEMA_BYTES);
    assert_eq!(decode(&b).unwrap().schema, s);
    // A schema length past the limit is refused whatever the rest says.
    let mut d = b.clone();
    put_u32(&mut d, OFF_SCHEMA_LEN, (MAX_SCHEMA_BYTES + 1) as u32);
    assert_eq!(decode(&d).unwrap_err().code, Code::Format);
}
