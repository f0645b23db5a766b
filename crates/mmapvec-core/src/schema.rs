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
    /// The name schemas write (`"f32"`).
    pub fn name(self) -> String {
        type_name(self)
    }

    /// The type of a name as schemas write it (`"f32"`), or None.
    pub fn parse(name: &str) -> Option<ElemType> {
        serde_json::from_value(serde_json::Value::String(name.to_string())).ok()
    }

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

    /// A schema as a program asks for it, field by field (name, element type, values per row),
    /// validated; `scalar` for a vec of plain values (one field, named `value`).
    pub fn request(
        scalar: bool,
        fields: impl IntoIterator<Item = (String, ElemType, u32)>,
    ) -> Result<Schema> {
        let s = Schema {
            scalar,
            columns: fields
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
        if self.scalar {
            return field_type(&self.columns[0]);
        }
        let parts: Vec<String> = self
            .columns
            .iter()
            .map(|c| format!("{}: {}", c.name, field_type(c)))
            .collect();
        format!("{{ {} }}", parts.join(", "))
    }

    /// What separates a stored schema (`self`) from the one a program asked for, and the calls
    /// that migrate the stored one, for the ESCHEMA message of an open. Fields are matched by
    /// name; a stored-only and a requested-only field of the same type and width are reported
    /// as a likely rename.
    pub fn difference(&self, requested: &Schema) -> String {
        if self.scalar != requested.scalar {
            let (has, wants) = if self.scalar {
                ("a vec of plain values", "fields")
            } else {
                ("a vec of fields", "plain values")
            };
            return format!(
                "the stored vec is {has} and the program asked for {wants}; schema changes (addColumn, dropColumn, renameColumn) apply to vecs of fields only, so copy the rows into a new vec instead"
            );
        }
        if self.scalar {
            return format!(
                "the stored values are {} and the program asked for {}; a vec of plain values cannot change its type, so copy the rows into a new vec instead",
                self.describe(),
                requested.describe()
            );
        }
        let mut facts = Vec::new();
        let mut calls = Vec::new();
        let mut changed_type = Vec::new();
        for c in &requested.columns {
            if let Some(s) = self.columns.iter().find(|s| s.name == c.name) {
                if s.ty != c.ty || s.count != c.count {
                    facts.push(format!(
                        "column {} is {} stored and {} requested",
                        js_str(&c.name),
                        field_type(s),
                        field_type(c)
                    ));
                    changed_type.push(c);
                }
            }
        }
        let mut missing: Vec<&Column> = requested
            .columns
            .iter()
            .filter(|c| !self.columns.iter().any(|s| s.name == c.name))
            .collect();
        let mut extra: Vec<&Column> = self
            .columns
            .iter()
            .filter(|s| !requested.columns.iter().any(|c| c.name == s.name))
            .collect();
        // Pair stored-only with requested-only fields of the same type: likely renames.
        let mut renames = Vec::new();
        extra.retain(
            |s| match missing.iter().position(|c| c.ty == s.ty && c.count == s.count) {
                Some(k) => {
                    renames.push((*s, missing.remove(k)));
                    false
                }
                None => true,
            },
        );
        for (s, c) in &renames {
            facts.push(format!(
                "the stored column {} ({}) is not requested and the requested column {} is not stored: likely renamed",
                js_str(&s.name),
                field_type(s),
                js_str(&c.name)
            ));
            calls.push(format!(
                "vec.renameColumn({}, {})",
                js_str(&s.name),
                js_str(&c.name)
            ));
        }
        for c in &missing {
            facts.push(format!(
                "the stored schema has no column {} ({})",
                js_str(&c.name),
                field_type(c)
            ));
            calls.push(format!(
                "vec.addColumn({}, {})",
                js_str(&c.name),
                js_field_type(c)
            ));
        }
        for s in &extra {
            facts.push(format!(
                "the stored column {} ({}) is not in the requested schema",
                js_str(&s.name),
                field_type(s)
            ));
            calls.push(format!(
                "vec.dropColumn({}) (which deletes its data; or add the field to the program's schema)",
                js_str(&s.name)
            ));
        }
        let mut out = facts.join("; ");
        if !calls.is_empty() {
            out.push_str(&format!(
                "; to migrate, open it with the stored schema {} and call {}",
                self.describe_js(),
                calls.join(", ")
            ));
        }
        for c in changed_type {
            out.push_str(&format!(
                "; a column's type cannot change in place: add a column of the new type, copy the values, drop {} and rename the new one to it (vec.addColumn, vec.dropColumn, vec.renameColumn)",
                js_str(&c.name)
            ));
        }
        out
    }

    /// The schema as JavaScript source (`{ pos: ['f32', 3], id: 'u32' }`), to paste into a program.
    pub fn describe_js(&self) -> String {
        if self.scalar {
            return js_field_type(&self.columns[0]);
        }
        let parts: Vec<String> = self
            .columns
            .iter()
            .map(|c| format!("{}: {}", js_key(&c.name), js_field_type(c)))
            .collect();
        format!("{{ {} }}", parts.join(", "))
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a schema always serializes")
    }
}

/// The type name as stored and as JavaScript writes it (`f32`).
fn type_name(t: ElemType) -> String {
    serde_json::to_value(t)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| "?".to_string())
}

/// `u32` or `[f32, 3]`, as the messages show fields.
fn field_type(c: &Column) -> String {
    if c.count == 1 {
        type_name(c.ty)
    } else {
        format!("[{}, {}]", type_name(c.ty), c.count)
    }
}

/// `'u32'` or `['f32', 3]`: a field type as JavaScript source.
fn js_field_type(c: &Column) -> String {
    if c.count == 1 {
        format!("'{}'", type_name(c.ty))
    } else {
        format!("['{}', {}]", type_name(c.ty), c.count)
    }
}

/// A string literal JavaScript reads back as `s`: single-quoted when that needs no escapes.
pub fn js_str(s: &str) -> String {
    if s.chars().all(|c| c != '\'' && c != '\\' && !c.is_control()) {
        format!("'{s}'")
    } else {
        serde_json::to_string(s).expect("a string always serializes")
    }
}

/// An object key as JavaScript source: bare when it is an identifier.
fn js_key(s: &str) -> String {
    let mut chars = s.chars();
    let ident = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
    if ident {
        s.to_string()
    } else {
        js_str(s)
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

    #[test]
    fn differences_name_the_columns_and_the_calls_that_migrate() {
        let stored = req(r#"{"scalar":false,"columns":[{"name":"pos","type":"f32","count":3},{"name":"hp","type":"u16","count":1},{"name":"old","type":"bool","count":1}]}"#).unwrap();
        let wanted = req(r#"{"scalar":false,"columns":[{"name":"pos","type":"f64","count":3},{"name":"health","type":"u16","count":1},{"name":"id","type":"u64","count":1}]}"#).unwrap();
        let d = stored.difference(&wanted);
        for part in [
            "column 'pos' is [f32, 3] stored and [f64, 3] requested",
            "vec.renameColumn('hp', 'health')",
            "the stored schema has no column 'id' (u64)",
            "vec.addColumn('id', 'u64')",
            "vec.dropColumn('old')",
            "open it with the stored schema { pos: ['f32', 3], hp: 'u16', old: 'bool' }",
            "a column's type cannot change in place",
        ] {
            assert!(d.contains(part), "{part:?} missing from: {d}");
        }
        let scalar = req(r#"{"scalar":true,"columns":[{"name":"value","type":"f64","count":1}]}"#).unwrap();
        assert!(scalar.difference(&stored).contains("plain values"));
        assert!(stored.difference(&scalar).contains("plain values"));
    }

    #[test]
    fn javascript_literals_quote_what_needs_it() {
        assert_eq!(js_str("hp"), "'hp'");
        assert_eq!(js_str("it's"), r#""it's""#);
        assert_eq!(js_key("a b"), "'a b'");
        assert_eq!(js_key("_x1"), "_x1");
        assert_eq!(ElemType::parse("bool"), Some(ElemType::Bool));
        assert_eq!(ElemType::parse("f16"), None);
    }
}
