//! Schemas: which columns a vec has, their element types and widths.

use serde::{Deserialize, Serialize};

use crate::error::{Code, Error, Result};

/// The element types a column can hold. Values are stored raw, in native byte order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ElemType {
    I8,
    U8,
    I16,
    U16,
    I32,
    U32,
    I64,
    U64,
    F32,
    F64,
    /// One byte, 0 or 1.
    Bool,
}

impl ElemType {
    /// Bytes per value.
    pub fn size(self) -> usize {
        match self {
            ElemType::I8 | ElemType::U8 | ElemType::Bool => 1,
            ElemType::I16 | ElemType::U16 => 2,
            ElemType::I32 | ElemType::U32 | ElemType::F32 => 4,
            ElemType::I64 | ElemType::U64 | ElemType::F64 => 8,
        }
    }
}

/// The most values one fixed-size array field may hold; keeps a row of one column under 8 MiB.
pub const MAX_COUNT: u32 = 1 << 20;
/// Column data is aligned to this many bytes (a cache line; Arrow asks for 8, recommends 64).
pub const COLUMN_ALIGN: u32 = 64;
/// Column data starts within the first 4096 bytes of its file.
pub const MAX_OFFSET: u32 = 4096 - COLUMN_ALIGN;

/// The most columns a schema may have.
pub const MAX_COLUMNS: usize = 1024;
/// The longest column name, in bytes.
pub const MAX_NAME: usize = 255;

/// One column: `count` values of `ty` per row, kept in the file `file` of the vec's directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Column {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: ElemType,
    pub count: u32,
    /// File name inside the vec's directory. Assigned at creation; absent in requests.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub file: String,
    /// Where the rows start in the file: a multiple of [`COLUMN_ALIGN`] below 4096, different
    /// for neighbouring columns. Assigned at creation.
    #[serde(default)]
    pub offset: u32,
}

impl Column {
    /// Bytes one row takes in this column.
    pub fn row_size(&self) -> usize {
        self.ty.size() * self.count as usize
    }
}

/// A vec's schema. A scalar vec has exactly one column, named `value`, and reads as plain values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schema {
    pub scalar: bool,
    pub columns: Vec<Column>,
}

impl Schema {
    /// Parses and validates a schema as the TypeScript facade sends it (JSON).
    pub fn parse_request(json: &str) -> Result<Schema> {
        let mut s: Schema = serde_json::from_str(json)
            .map_err(|e| Error::new(Code::Invalid, format!("invalid schema: {e}")))?;
        for c in &mut s.columns {
            c.file.clear();
            c.offset = 0;
        }
        s.validate()?;
        Ok(s)
    }

    /// Checks names, counts and shape; fails with EINVAL saying what is wrong.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::new(Code::Invalid, m));
        if self.columns.is_empty() {
            return bad("invalid schema: it has no fields; give at least one, e.g. { x: 'f32' }".into());
        }
        if self.columns.len() > MAX_COLUMNS {
            return bad(format!(
                "invalid schema: {} fields, at most {MAX_COLUMNS} are allowed",
                self.columns.len()
            ));
        }
        if self.scalar && (self.columns.len() != 1 || self.columns[0].name != "value") {
            return bad("invalid schema: a scalar schema has exactly one column named 'value'".into());
        }
        for (i, c) in self.columns.iter().enumerate() {
            if c.name.is_empty() {
                return bad("invalid schema: a field has an empty name".into());
            }
            if c.name.len() > MAX_NAME {
                return bad(format!(
                    "invalid schema: field name '{}...' is longer than {MAX_NAME} bytes",
                    c.name.chars().take(32).collect::<String>()
                ));
            }
            if c.count == 0 || c.count > MAX_COUNT {
                return bad(format!(
                    "invalid schema: field '{}' has array length {}; it must be from 1 to {MAX_COUNT}",
                    c.name, c.count
                ));
            }
            if c.offset % COLUMN_ALIGN != 0 || c.offset > MAX_OFFSET {
                return bad(format!(
                    "invalid schema: field '{}' starts at byte {} of its file; it must be a multiple of {COLUMN_ALIGN} below 4096",
                    c.name, c.offset
                ));
            }
            if self.columns[..i].iter().any(|o| o.name == c.name) {
                return bad(format!("invalid schema: field '{}' appears twice", c.name));
            }
        }
        Ok(())
    }

    /// Gives every column a file name (`c0.col`, `c1.col`, ...) and a data offset, for a vec
    /// being created. The offsets differ by a cache line from column to column: were every
    /// column to start at the same offset within a page, row `i` of all of them would fall in
    /// the same L1 cache set (and alias in the CPU's 4K store-forwarding check), which makes a
    /// loop that writes several columns many times slower.
    pub fn assign_files(&mut self) {
        for (i, c) in self.columns.iter_mut().enumerate() {
            c.file = format!("c{i}.col");
            c.offset = (i as u32 * COLUMN_ALIGN) % (MAX_OFFSET + COLUMN_ALIGN);
        }
    }

    /// True when both schemas have the same fields (name, type, width) in any order.
    pub fn same_fields(&self, other: &Schema) -> bool {
        self.scalar == other.scalar
            && self.columns.len() == other.columns.len()
            && self.columns.iter().all(|c| {
                other
                    .columns
                    .iter()
                    .any(|o| o.name == c.name && o.ty == c.ty && o.count == c.count)
            })
    }

    /// A short human form, `{ pos: [f32, 3], id: u32 }` or `f64`, for error messages.
    pub fn describe(&self) -> String {
        let field = |c: &Column| {
            let t = serde_json::to_value(c.ty).ok();
            let t = t.as_ref().and_then(|v| v.as_str()).unwrap_or("?").to_string();
            if c.count == 1 {
                t
            } else {
                format!("[{t}, {}]", c.count)
            }
        };
        if self.scalar {
            return field(&self.columns[0]);
        }
        let parts: Vec<String> = self
            .columns
            .iter()
            .map(|c| format!("{}: {}", c.name, field(c)))
            .collect();
        format!("{{ {} }}", parts.join(", "))
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a schema always serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(json: &str) -> Result<Schema> {
        Schema::parse_request(json)
    }

    #[test]
    fn parses_a_valid_schema() {
        let s = req(r#"{"scalar":false,"columns":[{"name":"pos","type":"f32","count":3},{"name":"id","type":"u32","count":1}]}"#).unwrap();
        assert_eq!(s.columns.len(), 2);
        assert_eq!(s.columns[0].row_size(), 12);
        assert_eq!(s.describe(), "{ pos: [f32, 3], id: u32 }");
    }

    #[test]
    fn rejects_bad_schemas_with_einval() {
        for bad in [
            r#"{"scalar":false,"columns":[]}"#,
            r#"{"scalar":false,"columns":[{"name":"","type":"f32","count":1}]}"#,
            r#"{"scalar":false,"columns":[{"name":"a","type":"f16","count":1}]}"#,
            r#"{"scalar":false,"columns":[{"name":"a","type":"f32","count":0}]}"#,
            r#"{"scalar":false,"columns":[{"name":"a","type":"f32","count":1},{"name":"a","type":"u8","count":1}]}"#,
            r#"{"scalar":true,"columns":[{"name":"x","type":"f32","count":1}]}"#,
            r#"not json"#,
        ] {
            assert_eq!(req(bad).unwrap_err().code, Code::Invalid, "{bad}");
        }
    }

    #[test]
    fn compares_fields_in_any_order() {
        let a = req(r#"{"scalar":false,"columns":[{"name":"a","type":"f32","count":1},{"name":"b","type":"u8","count":2}]}"#).unwrap();
        let b = req(r#"{"scalar":false,"columns":[{"name":"b","type":"u8","count":2},{"name":"a","type":"f32","count":1}]}"#).unwrap();
        let c = req(r#"{"scalar":false,"columns":[{"name":"b","type":"u8","count":3},{"name":"a","type":"f32","count":1}]}"#).unwrap();
        assert!(a.same_fields(&b));
        assert!(!a.same_fields(&c));
    }
}
