//! Schema changes: adding, dropping and renaming a column (docs/FORMAT.md, "Schema changes").

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::dir;
use crate::error::{Code, Error, Result};
use crate::header::{self, Header, HEADER_FILE};
use crate::lock;
use crate::schema::{js_str, Column, ElemType, Schema, COLUMN_ALIGN};
use crate::sys::{self, FileMap, MapMode};

use super::{mapped_bytes, reservation_for, ColumnMap, MmapVec};

/// Schema changes. Each is atomic on disk: what it needs is prepared under names nothing reads
/// (a new column file, a new header written beside the live one), made durable, and committed
/// by renaming the new header over the old one, so a crash leaves the old schema or the new one.
/// Each first makes everything written before it durable (a flush). Existing rows are never
/// rewritten. See docs/FORMAT.md, "Schema changes".
impl MmapVec {
    /// Adds a column; every row, existing and new, reads zero in it until written. The new
    /// column file is sized to the current capacity with reserved (not written) blocks.
    pub fn add_column(&mut self, name: &str, ty: ElemType, count: u32) -> Result<()> {
        self.changeable("addColumn")?;
        let p = self.path.display().to_string();
        if self.column_index(name).is_some() {
            return Err(Error::new(
                Code::Schema,
                format!(
                    "{p}: addColumn: the vec already has a column {}; choose another name, or drop that column first with vec.dropColumn({})",
                    js_str(name),
                    js_str(name)
                ),
            ));
        }
        let n = self.next_file_number();
        let col = Column {
            name: name.to_string(),
            ty,
            count,
            file: format!("c{n}.col"),
            // As at creation: neighbouring columns start a cache line apart (see assign_files).
            offset: (n % 64) as u32 * COLUMN_ALIGN,
        };
        let mut schema = self.header.schema.clone();
        schema.columns.push(col.clone());
        schema
            .validate()
            .map_err(|e| Error::new(e.code, format!("{p}: addColumn: {}", e.message)))?;
        if self.capacity > self.max_view_bytes / col.row_size() as u64 {
            return Err(Error::new(
                Code::Range,
                format!(
                    "{p}: addColumn: a column of {} rows of {} bytes would be larger than this runtime can show as one view ({} bytes); {}",
                    self.capacity,
                    col.row_size(),
                    self.max_view_bytes,
                    self.view_limit_fix
                ),
            ));
        }
        self.remove_leftovers();
        self.flush()?;
        let (dir, scratch) = self.new_files_dir()?;
        let prepared = self.prepare_column(&dir, &col);
        if let Some(d) = scratch {
            let _ = fs::remove_dir_all(d);
        }
        let column = prepared?;
        match self.replace_header(schema) {
            Ok(late) => {
                self.columns.push(column);
                late.map_or(Ok(()), Err)
            }
            Err(e) => {
                if !self.temp {
                    let _ = fs::remove_file(&column.path);
                }
                Err(e)
            }
        }
    }

    /// Removes a column and its data; the column file is deleted once the new header is durable.
    /// Whoever handed out pointers into the column (views) must revoke them after this.
    pub fn drop_column(&mut self, name: &str) -> Result<()> {
        self.rewrites.fetch_add(1, Ordering::AcqRel);
        self.changeable("dropColumn")?;
        let p = self.path.display().to_string();
        let i = self
            .column_index(name)
            .ok_or_else(|| self.unknown_column("dropColumn", name))?;
        if self.header.schema.columns.len() == 1 {
            return Err(Error::new(
                Code::Schema,
                format!(
                    "{p}: dropColumn: {} is the vec's only column, and a vec has at least one; add another column first, or delete the whole vec with MmapVec.remove",
                    js_str(name)
                ),
            ));
        }
        self.remove_leftovers();
        self.flush()?;
        // The prefault thread may be touching the column's pages; it must not outlive them.
        self.stop_prefaults();
        let mut schema = self.header.schema.clone();
        schema.columns.remove(i);
        let late = self.replace_header(schema)?;
        let column = self.columns.remove(i);
        column.region.unguard();
        // Only once the header without it is durable: before that, a power cut could bring
        // back the old header, which needs the file. Left in place, it is an orphan that the
        // next read-write open removes.
        if late.is_none() && !self.temp {
            let _ = fs::remove_file(&column.path);
        }
        late.map_or(Ok(()), Err)
    }

    /// Renames a column; its data stays where it is. Renaming to the same name does nothing.
    pub fn rename_column(&mut self, from: &str, to: &str) -> Result<()> {
        self.changeable("renameColumn")?;
        let p = self.path.display().to_string();
        let i = self
            .column_index(from)
            .ok_or_else(|| self.unknown_column("renameColumn", from))?;
        if from == to {
            return Ok(());
        }
        if self.column_index(to).is_some() {
            return Err(Error::new(
                Code::Schema,
                format!(
                    "{p}: renameColumn: the vec already has a column {}; drop it first with vec.dropColumn({}), or choose another name",
                    js_str(to),
                    js_str(to)
                ),
            ));
        }
        let mut schema = self.header.schema.clone();
        schema.columns[i].name = to.to_string();
        schema
            .validate()
            .map_err(|e| Error::new(e.code, format!("{p}: renameColumn: {}", e.message)))?;
        self.remove_leftovers();
        self.flush()?;
        self.replace_header(schema)?.map_or(Ok(()), Err)
    }

    /// Removes what an earlier change a crash cut off left behind (see [`remove_orphans`]).
    /// Done here rather than at open, so that opening never changes a vec's files.
    fn remove_leftovers(&self) {
        if !self.temp {
            dir::remove_orphans(&self.path, &self.header.schema);
        }
    }

    fn changeable(&self, what: &str) -> Result<()> {
        self.writable()?;
        if self.header.schema.scalar {
            return Err(Error::new(
                Code::Schema,
                format!(
                    "{}: {what}: this is a vec of plain values ({}), which has no named columns; schema changes apply to vecs of fields. Copy the rows into a new vec with fields instead",
                    self.path.display(),
                    self.header.schema.describe()
                ),
            ));
        }
        Ok(())
    }

    fn column_index(&self, name: &str) -> Option<usize> {
        self.header.schema.columns.iter().position(|c| c.name == name)
    }

    fn unknown_column(&self, what: &str, name: &str) -> Error {
        let names: Vec<String> = self
            .header
            .schema
            .columns
            .iter()
            .map(|c| js_str(&c.name))
            .collect();
        Error::new(
            Code::Schema,
            format!(
                "{}: {what}: the vec has no column {}; its columns are {}",
                self.path.display(),
                js_str(name),
                names.join(", ")
            ),
        )
    }

    /// One more than any column file number the header or the directory uses, so a new column
    /// never gets the name of a file that exists (an orphan of an interrupted change).
    fn next_file_number(&self) -> u64 {
        let mut max = self
            .header
            .schema
            .columns
            .iter()
            .filter_map(|c| dir::column_file_number(&c.file))
            .max();
        if !self.temp {
            if let Ok(entries) = fs::read_dir(&self.path) {
                for e in entries.flatten() {
                    if let Some(n) = e.file_name().to_str().and_then(dir::column_file_number) {
                        max = max.max(Some(n));
                    }
                }
            }
        }
        max.map_or(0, |m| m + 1)
    }

    /// Where a change creates files: the vec's directory, or for a temp vec (whose directory is
    /// gone) a scratch directory, returned second, that the caller removes once the files are open.
    fn new_files_dir(&self) -> Result<(PathBuf, Option<PathBuf>)> {
        if !self.temp {
            return Ok((self.path.clone(), None));
        }
        let dir = dir::create_scratch_dir("changing a temp vec's schema")?;
        Ok((dir.clone(), Some(dir)))
    }

    /// Creates, sizes (reserved blocks, zero), syncs and maps a new column file in `dir`.
    fn prepare_column(&self, dir: &Path, col: &Column) -> Result<ColumnMap> {
        let (file, size) = dir::create_column_file(dir, col, self.capacity)?;
        let cp = dir.join(&col.file);
        let mapped = mapped_bytes(self.capacity, col.row_size(), col.offset);
        let made = (|| {
            let region = reservation_for(mapped, self.reservation)
                .map_err(|e| Error::io(&e, &cp, "reserving address space"))?;
            region
                .map_file(&file, 0, mapped, MapMode::Shared)
                .map_err(|e| Error::io(&e, &cp, "mapping the column"))?;
            Ok(region)
        })();
        let region = match made {
            Ok(m) => m,
            Err(e) => {
                let _ = fs::remove_file(&cp);
                return Err(e);
            }
        };
        Ok(ColumnMap {
            file: Arc::new(file),
            path: self.path.join(&col.file),
            row_size: col.row_size(),
            offset: col.offset,
            region: Arc::new(region),
            mapped,
            file_len: size,
            synced_len: size,
        })
    }

    /// Writes `schema` into a new header file with the current row count, locks and maps it,
    /// makes it durable, and renames it over the live header: the commit point. `Err`: nothing
    /// changed. `Ok(Some(e))`: the change is made (in memory and in the directory), but making
    /// the rename durable failed with `e`.
    fn replace_header(&mut self, schema: Schema) -> Result<Option<Error>> {
        self.rewrites.fetch_add(1, Ordering::AcqRel);
        let mut bytes = Header::encode_for(&schema, self.header.app_version, &self.header.arch)?;
        // The count JavaScript keeps in the mapped header, carried over exactly; JavaScript
        // cannot run during this call, so it cannot change meanwhile.
        let len = self.header_map.read_f64(header::OFF_LENGTH);
        bytes[header::OFF_LENGTH..header::OFF_LENGTH + 8].copy_from_slice(&len.to_ne_bytes());
        let hp = self.path.join(HEADER_FILE);
        let (dir, scratch) = self.new_files_dir()?;
        let tmp = dir::header_tmp_path(&dir);
        let prepared = (|| {
            use std::io::Write;
            let mut f = sys::open_file(&tmp, true, true)
                .map_err(|e| Error::io(&e, &tmp, "writing the new header"))?;
            f.write_all(&bytes)
                .and_then(|()| f.sync_all())
                .map_err(|e| Error::io(&e, &tmp, "writing the new header"))?;
            // Locked before it becomes the live header, so that no opener ever finds it unlocked.
            let held = match self.lock {
                Some(_) => Some(lock::lock(&f, true, Duration::ZERO, &self.path)?),
                None => None,
            };
            let map = FileMap::new(&f, bytes.len(), MapMode::Shared)
                .map_err(|e| Error::io(&e, &tmp, "mapping the new header"))?;
            Ok((f, held, map))
        })();
        if let Some(d) = scratch {
            let _ = fs::remove_dir_all(d);
        }
        let (file, held, map) = match prepared {
            Ok(p) => p,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
        };
        if !self.temp {
            if let Err(e) = fs::rename(&tmp, &hp) {
                let _ = fs::remove_file(&tmp);
                return Err(Error::io(&e, &hp, "replacing the header"));
            }
        }
        let header_size = bytes.len();
        self.header = Header {
            app_version: self.header.app_version,
            schema,
            arch: self.header.arch.clone(),
            header_size,
        };
        // The old header's mapping lives on while JavaScript views over it do; the facade
        // detaches them and maps the new header.
        // The old header's views are detached (or get zero pages) by the caller: unguarded.
        self.header_map.unguard();
        self.header_map = Arc::new(map);
        let old_file = std::mem::replace(&mut self.header_file, Arc::new(file));
        let old_held = std::mem::replace(&mut self.lock, held);
        if old_held.is_some() {
            let _ = sys::unlock(&old_file);
        }
        drop(old_held);
        if let Some(l) = &self.live {
            l.publish_schema_change(self.len());
        }
        if self.temp {
            return Ok(None);
        }
        Ok(sys::sync_dir(&self.path).err().map(|e| {
            Error::io(
                &e,
                &self.path,
                "making the schema change durable (it is made, but may not survive a power cut; flush again)",
            )
        }))
    }
}
