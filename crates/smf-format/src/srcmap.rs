//! The `srcmap` table: image offset → (file, line, column) for module code.
//!
//! `docs/FORMAT.md` (*Source map*) specifies the encoding byte for byte: a header, a block
//! index sorted by address, a file table, the file names, and the rows, LEB128 delta-encoded
//! in blocks. A lookup binary-searches the block index and decodes one block; nothing is
//! allocated, so a crash handler can call [`SourceMap::lookup`].
//!
//! [`SourceMap::parse`] validates the whole table; [`SourceMapBuilder`] makes one. The reader
//! of a module does not decode the table when it parses the module ([`crate::Module::parse`]
//! checks only its section entry): [`crate::Module::source_map`] validates it when it is
//! asked for.

use std::collections::HashMap;

use crate::Error;
use crate::read::Module;
use crate::types::SectionKind;

/// The version of the table this crate reads and writes.
pub const SOURCE_MAP_VERSION: u32 = 1;
/// Size of the table's header.
pub const SOURCE_MAP_HEADER_SIZE: usize = 24;
/// Size of one block-index entry.
pub const SOURCE_MAP_BLOCK_SIZE: usize = 16;
/// How many rows the builder puts in a block unless told otherwise.
pub const DEFAULT_ROWS_PER_BLOCK: usize = 64;

/// Where module code came from. `line` is 1-based; `column` is 1-based, or 0 when unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceLocation<'data> {
    pub file: &'data str,
    pub line: u32,
    pub column: u32,
}

impl core::fmt::Display for SourceLocation<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)?;
        if self.column != 0 {
            write!(f, ":{}", self.column)?;
        }
        Ok(())
    }
}

/// One row of the table: from `address` up to the next row's address, the code comes from
/// `file`:`line`:`column`; a row with `line` 0 says the code after it has no source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceRow {
    /// Image offset.
    pub address: u64,
    /// Index in the file table (meaningless when `line` is 0).
    pub file: u32,
    pub line: u32,
    pub column: u32,
}

impl SourceRow {
    /// Whether this row ends a run of code with source (its `line` is 0).
    pub fn is_end(&self) -> bool {
        self.line == 0
    }
}

/// A validated `srcmap` table, viewed in place.
#[derive(Debug, Clone, Copy)]
pub struct SourceMap<'data> {
    blocks: &'data [u8],
    files: &'data [u8],
    strings: &'data [u8],
    rows: &'data [u8],
    row_count: u32,
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    let word = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(word.try_into().ok()?))
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    let word = bytes.get(at..at.checked_add(8)?)?;
    Some(u64::from_le_bytes(word.try_into().ok()?))
}

/// An unsigned LEB128 number of at most `bits` bits at `*at`, which moves past it.
fn uleb(bytes: &[u8], at: &mut usize, bits: u32) -> Option<u64> {
    let mut value = 0u64;
    let mut shift = 0u32;
    loop {
        let byte = *bytes.get(*at)?;
        *at += 1;
        let low = u64::from(byte & 0x7f);
        if shift >= 64 || (shift > 0 && low >> (64 - shift) != 0) {
            return None;
        }
        value |= low << shift;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    (bits == 64 || value >> bits == 0).then_some(value)
}

fn push_uleb(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn zigzag(delta: i64) -> u64 {
    ((delta << 1) ^ (delta >> 63)) as u64
}

fn unzigzag(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

/// One block-index entry.
#[derive(Debug, Clone, Copy)]
struct Block {
    address: u64,
    rows_offset: u32,
    row_count: u32,
}

/// Why a row does not decode, for the validator's messages.
enum RowError {
    Truncated,
    TooLarge(&'static str),
    Line(i64),
}

/// Decodes the rows of one block, in order. Validation decides whether they are well formed;
/// this only never reads out of bounds.
struct BlockRows<'data> {
    rows: &'data [u8],
    at: usize,
    end: usize,
    left: u32,
    state: SourceRow,
}

impl BlockRows<'_> {
    /// The next row and the address delta it was encoded with.
    fn next_row(&mut self) -> Option<Result<(SourceRow, u64), RowError>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let rows = self.rows.get(..self.end).unwrap_or(&[]);
        let mut step = || {
            let delta = uleb(rows, &mut self.at, 64).ok_or(RowError::Truncated)?;
            let address = self
                .state
                .address
                .checked_add(delta)
                .ok_or(RowError::TooLarge("address"))?;
            let line_file = uleb(rows, &mut self.at, 64).ok_or(RowError::Truncated)?;
            let line = i64::from(self.state.line) + unzigzag(line_file >> 1);
            let line = u32::try_from(line).map_err(|_| RowError::Line(line))?;
            let file = if line_file & 1 != 0 {
                uleb(rows, &mut self.at, 32).ok_or(RowError::TooLarge("file"))? as u32
            } else {
                self.state.file
            };
            let column = uleb(rows, &mut self.at, 32).ok_or(RowError::TooLarge("column"))? as u32;
            self.state = SourceRow {
                address,
                file,
                line,
                column,
            };
            Ok((self.state, delta))
        };
        Some(step())
    }
}

impl Iterator for BlockRows<'_> {
    type Item = SourceRow;

    fn next(&mut self) -> Option<SourceRow> {
        match self.next_row()? {
            Ok((row, _)) => Some(row),
            Err(_) => {
                self.left = 0;
                None
            }
        }
    }
}

impl<'data> SourceMap<'data> {
    /// Validates a `srcmap` payload (every rule of `docs/FORMAT.md`, *Source map*) and views
    /// it in place. Errors name the part of the table, the entry and the value.
    pub fn parse(data: &'data [u8]) -> Result<SourceMap<'data>, Error> {
        let map = SourceMap::split(data)?;
        for index in 0..map.file_count() {
            map.file_checked(index)
                .map_err(|problem| Error::malformed(format!("srcmap file {index}"), problem))?;
        }
        map.check_rows(map.file_count())?;
        Ok(map)
    }

    /// Views a table that [`SourceMap::parse`] accepted before (for example when its module
    /// was loaded), checking only its header: O(1). Reading a table that did not pass
    /// `parse` never panics or reads out of bounds, but may give wrong answers.
    pub fn view(data: &'data [u8]) -> Option<SourceMap<'data>> {
        SourceMap::split(data).ok()
    }

    /// Checks the header and cuts the table into its parts.
    fn split(data: &'data [u8]) -> Result<SourceMap<'data>, Error> {
        let bad = |location: String, problem: String| Error::malformed(location, problem);
        let header = |at: usize| {
            u32_at(data, at).ok_or(Error::Truncated {
                what: "srcmap header",
                needed: SOURCE_MAP_HEADER_SIZE as u64,
                size: data.len() as u64,
            })
        };
        let version = header(0)?;
        if version != SOURCE_MAP_VERSION {
            return Err(bad(
                "srcmap header".into(),
                format!("version is {version}, this reader understands {SOURCE_MAP_VERSION}"),
            ));
        }
        let file_count = header(4)?;
        let block_count = header(8)?;
        let row_count = header(12)?;
        let strings_size = header(16)?;
        let rows_size = header(20)?;
        let sizes = [
            u64::from(block_count) * SOURCE_MAP_BLOCK_SIZE as u64,
            u64::from(file_count) * 4,
            u64::from(strings_size),
            u64::from(rows_size),
        ];
        let expected = SOURCE_MAP_HEADER_SIZE as u64 + sizes.iter().sum::<u64>();
        if expected != data.len() as u64 {
            return Err(bad(
                "srcmap header".into(),
                format!(
                    "{block_count} blocks, {file_count} files, {strings_size:#x} bytes of names and {rows_size:#x} bytes of rows make {expected:#x} bytes, but the table has {:#x}",
                    data.len()
                ),
            ));
        }
        let mut at = SOURCE_MAP_HEADER_SIZE;
        let mut part = |len: u64| {
            let start = at;
            at += len as usize;
            // In bounds: the parts add up to the table's size, checked above.
            data.get(start..at).unwrap_or(&[])
        };
        let map = SourceMap {
            blocks: part(sizes[0]),
            files: part(sizes[1]),
            strings: part(sizes[2]),
            rows: part(sizes[3]),
            row_count,
        };
        Ok(map)
    }

    fn file_checked(&self, index: u32) -> Result<&'data str, String> {
        let offset = u32_at(self.files, index as usize * 4).ok_or("no such file")? as usize;
        let rest = self
            .strings
            .get(offset..)
            .filter(|r| !r.is_empty())
            .ok_or_else(|| {
                format!(
                    "name offset {offset:#x} is outside the names ({:#x} bytes)",
                    self.strings.len()
                )
            })?;
        let len = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| format!("name at {offset:#x} has no terminating NUL"))?;
        if len == 0 {
            return Err(format!("name at {offset:#x} is empty"));
        }
        core::str::from_utf8(&rest[..len])
            .map_err(|e| format!("name at {offset:#x} is not UTF-8: {e}"))
    }

    fn check_rows(&self, file_count: u32) -> Result<(), Error> {
        let mut total = 0u64;
        let mut last: Option<SourceRow> = None;
        let block_count = self.block_count();
        for index in 0..block_count {
            let location = || format!("srcmap block {index}");
            let block = self
                .block(index)
                .ok_or_else(|| Error::malformed(location(), "entry runs past the block index"))?;
            let end = self.block_end(index);
            let expected_start = if index == 0 {
                0
            } else {
                self.block(index - 1).map_or(0, |b| b.rows_offset)
            };
            if index == 0 && block.rows_offset != 0 {
                return Err(Error::malformed(
                    location(),
                    format!("rows start at {:#x}, not 0", block.rows_offset),
                ));
            }
            if block.rows_offset as usize > end
                || (index > 0 && block.rows_offset <= expected_start)
            {
                return Err(Error::malformed(
                    location(),
                    format!(
                        "rows offset {:#x} is not between the previous block's ({expected_start:#x}) and {end:#x}",
                        block.rows_offset
                    ),
                ));
            }
            if block.row_count == 0 {
                return Err(Error::malformed(location(), "has no rows"));
            }
            if let Some(last) = last.filter(|last| block.address <= last.address) {
                return Err(Error::malformed(
                    location(),
                    format!(
                        "address {:#x} is not above the previous row's ({:#x})",
                        block.address, last.address
                    ),
                ));
            }
            total += u64::from(block.row_count);
            let mut rows = self.block_rows(&block, end);
            let mut row_index = 0;
            while let Some(row) = rows.next_row() {
                let at = rows.at;
                let location = || format!("srcmap block {index} row {row_index}");
                let (row, delta) = row.map_err(|e| {
                    let problem = match e {
                        RowError::Truncated => {
                            format!("runs past the end of its block ({end:#x})")
                        }
                        RowError::TooLarge(field) => format!("{field} does not fit (at {at:#x})"),
                        RowError::Line(line) => format!("line {line} is out of range"),
                    };
                    Error::malformed(location(), problem)
                })?;
                if row_index == 0 && delta != 0 {
                    return Err(Error::malformed(
                        location(),
                        format!("the first row of a block has address delta {delta}, not 0"),
                    ));
                }
                if row_index > 0 && delta == 0 {
                    return Err(Error::malformed(
                        location(),
                        format!("address {:#x} repeats the previous row's", row.address),
                    ));
                }
                if !row.is_end() && row.file >= file_count {
                    return Err(Error::malformed(
                        location(),
                        format!("file {} is not below the file count {file_count}", row.file),
                    ));
                }
                last = Some(row);
                row_index += 1;
            }
            if rows.at != end {
                return Err(Error::malformed(
                    location(),
                    format!(
                        "its {} rows end at {:#x}, but the block's bytes end at {end:#x}",
                        block.row_count, rows.at
                    ),
                ));
            }
        }
        if total != u64::from(self.row_count) {
            return Err(Error::malformed(
                "srcmap header",
                format!("row_count is {}, the blocks hold {total}", self.row_count),
            ));
        }
        if let Some(last) = last.filter(|last| !last.is_end()) {
            return Err(Error::malformed(
                "srcmap",
                format!(
                    "the last row (at {:#x}) has line {}; it must be an end row (line 0)",
                    last.address, last.line
                ),
            ));
        }
        Ok(())
    }

    fn block_count(&self) -> usize {
        self.blocks.len() / SOURCE_MAP_BLOCK_SIZE
    }

    fn block(&self, index: usize) -> Option<Block> {
        let at = index.checked_mul(SOURCE_MAP_BLOCK_SIZE)?;
        Some(Block {
            address: u64_at(self.blocks, at)?,
            rows_offset: u32_at(self.blocks, at + 8)?,
            row_count: u32_at(self.blocks, at + 12)?,
        })
    }

    /// Where the rows of block `index` end: the next block's start, or the end of the rows.
    fn block_end(&self, index: usize) -> usize {
        self.block(index + 1)
            .map_or(self.rows.len(), |next| next.rows_offset as usize)
    }

    fn block_rows(&self, block: &Block, end: usize) -> BlockRows<'data> {
        BlockRows {
            rows: self.rows,
            at: block.rows_offset as usize,
            end,
            left: block.row_count,
            state: SourceRow {
                address: block.address,
                file: 0,
                line: 0,
                column: 0,
            },
        }
    }

    /// The number of files.
    pub fn file_count(&self) -> u32 {
        (self.files.len() / 4) as u32
    }

    /// The name of file `index` (as the producer recorded it, usually a path).
    pub fn file(&self, index: u32) -> Option<&'data str> {
        self.file_checked(index).ok()
    }

    /// The number of rows, end rows included.
    pub fn row_count(&self) -> u32 {
        self.row_count
    }

    /// Whether the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.row_count == 0
    }

    /// Every row in address order, end rows included.
    pub fn rows(&self) -> impl Iterator<Item = SourceRow> + 'data {
        let map = *self;
        (0..self.block_count()).flat_map(move |index| {
            let block = map.block(index);
            let end = map.block_end(index);
            block
                .map(|block| map.block_rows(&block, end))
                .into_iter()
                .flatten()
        })
    }

    /// The row that covers image offset `address`, if it has a source (the last row at or
    /// before `address`, unless that is an end row). Allocates nothing.
    pub fn lookup_row(&self, address: u64) -> Option<SourceRow> {
        let count = self.block_count();
        // partition_point over the block index, by hand: the entries are unaligned bytes.
        let (mut low, mut high) = (0usize, count);
        while low < high {
            let mid = low + (high - low) / 2;
            if self.block(mid)?.address <= address {
                low = mid + 1;
            } else {
                high = mid;
            }
        }
        let index = low.checked_sub(1)?;
        let block = self.block(index)?;
        let mut found = None;
        for row in self.block_rows(&block, self.block_end(index)) {
            if row.address > address {
                break;
            }
            found = Some(row);
        }
        found.filter(|row| !row.is_end())
    }

    /// The source of the code at image offset `address`. Allocates nothing.
    pub fn lookup(&self, address: u64) -> Option<SourceLocation<'data>> {
        let row = self.lookup_row(address)?;
        Some(SourceLocation {
            file: self.file(row.file)?,
            line: row.line,
            column: row.column,
        })
    }

    /// The highest address a row names (that of the last row), if there are rows.
    fn last_address(&self) -> Option<u64> {
        let index = self.block_count().checked_sub(1)?;
        let block = self.block(index)?;
        self.block_rows(&block, self.block_end(index))
            .last()
            .map(|row| row.address)
    }
}

impl<'data> Module<'data> {
    /// The module's source map, validated now: `None` if the module has no `srcmap` table.
    /// Besides the rules of the table itself, every row must lie in the image (its address
    /// at most `image_size`).
    pub fn source_map(&self) -> Result<Option<SourceMap<'data>>, Error> {
        let Some(section) = self.table_section(SectionKind::SrcMap) else {
            return Ok(None);
        };
        let map = SourceMap::parse(section.data)?;
        let image_size = self.header().image_size;
        if let Some(last) = map.last_address().filter(|&last| last > image_size) {
            return Err(Error::malformed(
                "srcmap",
                format!("row address {last:#x} is past the image (image_size {image_size:#x})"),
            ));
        }
        Ok(Some(map))
    }
}

/// Writes the rows of `map`, one a line (`smf inspect --lines`): the image offset, then the
/// source, or `-` for an end row.
pub fn write_source_lines(
    map: Option<&SourceMap<'_>>,
    out: &mut impl core::fmt::Write,
) -> core::fmt::Result {
    let Some(map) = map else {
        return writeln!(out, "Source lines: none (no srcmap table)");
    };
    writeln!(
        out,
        "Source lines ({} rows, {} files):",
        map.row_count(),
        map.file_count()
    )?;
    for row in map.rows() {
        match map.file(row.file).filter(|_| !row.is_end()) {
            Some(file) => {
                let location = SourceLocation {
                    file,
                    line: row.line,
                    column: row.column,
                };
                writeln!(out, "  {:#010x}  {location}", row.address)?
            }
            None => writeln!(out, "  {:#010x}  -", row.address)?,
        }
    }
    Ok(())
}

/// The rows of `map` as JSON (`smf inspect --json --lines`): `address`, then `file`,
/// `line` and `column`, or `end: true`.
pub fn json_source_lines(map: Option<&SourceMap<'_>>) -> serde_json::Value {
    let Some(map) = map else {
        return serde_json::Value::Array(Vec::new());
    };
    map.rows()
        .map(|row| match map.file(row.file).filter(|_| !row.is_end()) {
            Some(file) => serde_json::json!({
                "address": row.address, "file": file, "line": row.line, "column": row.column,
            }),
            None => serde_json::json!({ "address": row.address, "end": true }),
        })
        .collect()
}

impl crate::write::ModuleBuilder<'_> {
    /// Sets the module's source map (the `srcmap` table) to what `map` holds.
    pub fn set_source_map(&mut self, map: &SourceMapBuilder) -> Result<(), Error> {
        self.set_opaque(SectionKind::SrcMap, map.encode()?)
    }
}

/// Collects rows and writes a `srcmap` table.
///
/// Producers add *sequences*: rows in address order and the address where the last one
/// ends, as a DWARF line program's sequences are. Sequences may come in any order; where
/// two rows have the same address the one added last wins, and a row wins over the end of
/// another sequence at the same address. Rows that repeat the previous row's source are
/// dropped.
#[derive(Debug, Clone)]
pub struct SourceMapBuilder {
    files: Vec<String>,
    file_index: HashMap<String, u32>,
    /// (address, order added, row); end rows have line 0.
    rows: Vec<(u64, usize, SourceRow)>,
    /// At most this many rows per block (at least 1).
    pub rows_per_block: usize,
}

impl Default for SourceMapBuilder {
    fn default() -> Self {
        SourceMapBuilder::new()
    }
}

impl SourceMapBuilder {
    pub fn new() -> SourceMapBuilder {
        SourceMapBuilder {
            files: Vec::new(),
            file_index: HashMap::new(),
            rows: Vec::new(),
            rows_per_block: DEFAULT_ROWS_PER_BLOCK,
        }
    }

    /// The index of file `name`, added if it is new.
    pub fn file(&mut self, name: &str) -> u32 {
        if let Some(&index) = self.file_index.get(name) {
            return index;
        }
        let index = self.files.len() as u32;
        self.files.push(name.to_owned());
        self.file_index.insert(name.to_owned(), index);
        index
    }

    /// Adds one sequence: `rows` (address, file index, line, column), each covering the code
    /// up to the next one, and the last up to `end`. Rows with line 0 mark code without source.
    /// Rows at or past `end` cover no code and are left out (gcc's line programs can place a
    /// row at the end address of its sequence).
    pub fn add_sequence(&mut self, rows: &[(u64, u32, u32, u32)], end: u64) {
        let rows: Vec<_> = rows.iter().filter(|row| row.0 < end).collect();
        for &&(address, file, line, column) in &rows {
            let order = self.rows.len();
            self.rows.push((
                address,
                order,
                SourceRow {
                    address,
                    file,
                    line,
                    column,
                },
            ));
        }
        if !rows.is_empty() {
            let order = self.rows.len();
            self.rows.push((
                end,
                order,
                SourceRow {
                    address: end,
                    file: 0,
                    line: 0,
                    column: 0,
                },
            ));
        }
    }

    /// Whether no rows were added.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The rows the table will hold, in address order.
    fn final_rows(&self) -> Vec<SourceRow> {
        let mut sorted: Vec<&(u64, usize, SourceRow)> = self.rows.iter().collect();
        sorted.sort_by_key(|(address, order, _)| (*address, *order));
        let mut rows: Vec<SourceRow> = Vec::with_capacity(sorted.len());
        for (_, _, row) in sorted {
            if let Some(last) = rows.last_mut().filter(|last| last.address == row.address) {
                if !row.is_end() || last.is_end() {
                    *last = *row;
                }
                continue;
            }
            rows.push(*row);
        }
        // Rows that say what the previous one said add nothing.
        rows.dedup_by(|next, previous| {
            (next.is_end() && previous.is_end())
                || (!next.is_end()
                    && !previous.is_end()
                    && (next.file, next.line, next.column)
                        == (previous.file, previous.line, previous.column))
        });
        // A table starts with a row that has a source and ends with an end row.
        while rows.first().is_some_and(SourceRow::is_end) {
            rows.remove(0);
        }
        rows
    }

    /// The encoded table (`docs/FORMAT.md`, *Source map*).
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        let rows = self.final_rows();
        for row in &rows {
            if !row.is_end() && row.file as usize >= self.files.len() {
                return Err(Error::Build(format!(
                    "source row at {:#x} names file {}, but there are {} files",
                    row.address,
                    row.file,
                    self.files.len()
                )));
            }
        }
        let mut strings = Vec::new();
        let mut files = Vec::with_capacity(self.files.len() * 4);
        for name in &self.files {
            if name.is_empty() || name.contains('\0') {
                return Err(Error::Build(format!(
                    "source file name {name:?} is empty or holds a NUL"
                )));
            }
            files.extend_from_slice(&(strings.len() as u32).to_le_bytes());
            strings.extend_from_slice(name.as_bytes());
            strings.push(0);
        }
        let per_block = self.rows_per_block.max(1);
        let mut blocks = Vec::new();
        let mut encoded = Vec::new();
        for chunk in rows.chunks(per_block) {
            let offset = u32::try_from(encoded.len())
                .map_err(|_| Error::Build("source map rows exceed 4 GiB".into()))?;
            blocks.extend_from_slice(&chunk[0].address.to_le_bytes());
            blocks.extend_from_slice(&offset.to_le_bytes());
            blocks.extend_from_slice(&(chunk.len() as u32).to_le_bytes());
            let mut state = SourceRow {
                address: chunk[0].address,
                file: 0,
                line: 0,
                column: 0,
            };
            for row in chunk {
                // End rows keep the file and say column 0.
                let (file, column) = if row.is_end() {
                    (state.file, 0)
                } else {
                    (row.file, row.column)
                };
                push_uleb(&mut encoded, row.address - state.address);
                let delta = i64::from(row.line) - i64::from(state.line);
                let changes_file = file != state.file;
                push_uleb(&mut encoded, (zigzag(delta) << 1) | u64::from(changes_file));
                if changes_file {
                    push_uleb(&mut encoded, u64::from(file));
                }
                push_uleb(&mut encoded, u64::from(column));
                state = SourceRow {
                    address: row.address,
                    file,
                    line: row.line,
                    column,
                };
            }
        }
        let too_big = |what: &str| Error::Build(format!("source map {what} exceed 4 GiB"));
        let mut out = Vec::with_capacity(
            SOURCE_MAP_HEADER_SIZE + blocks.len() + files.len() + strings.len() + encoded.len(),
        );
        out.extend_from_slice(&SOURCE_MAP_VERSION.to_le_bytes());
        for (value, what) in [
            (self.files.len(), "files"),
            (blocks.len() / SOURCE_MAP_BLOCK_SIZE, "blocks"),
            (rows.len(), "rows"),
            (strings.len(), "names"),
            (encoded.len(), "rows"),
        ] {
            let value = u32::try_from(value).map_err(|_| too_big(what))?;
            out.extend_from_slice(&value.to_le_bytes());
        }
        out.extend_from_slice(&blocks);
        out.extend_from_slice(&files);
        out.extend_from_slice(&strings);
        out.extend_from_slice(&encoded);
        SourceMap::parse(&out)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(per_block: usize) -> SourceMapBuilder {
        let mut builder = SourceMapBuilder::new();
        builder.rows_per_block = per_block;
        let a = builder.file("/src/a.c");
        let b = builder.file("/src/b.h");
        builder.add_sequence(
            &[
                (0x10, a, 3, 1),
                (0x14, a, 4, 5),
                (0x20, b, 10, 0),
                (0x28, a, 4, 5),
            ],
            0x30,
        );
        builder.add_sequence(&[(0x1000, a, 20, 2), (0x1008, a, 18, 9)], 0x1010);
        builder
    }

    #[test]
    fn lookups_find_the_row_covering_an_address() {
        for per_block in [1, 2, 3, 64] {
            let bytes = sample(per_block).encode().unwrap();
            let map = SourceMap::parse(&bytes).unwrap();
            let at = |address| map.lookup(address).map(|l| (l.file, l.line, l.column));
            assert_eq!(at(0x0f), None, "before the first row");
            assert_eq!(at(0x10), Some(("/src/a.c", 3, 1)));
            assert_eq!(at(0x13), Some(("/src/a.c", 3, 1)));
            assert_eq!(at(0x1f), Some(("/src/a.c", 4, 5)));
            assert_eq!(at(0x20), Some(("/src/b.h", 10, 0)));
            assert_eq!(at(0x2f), Some(("/src/a.c", 4, 5)));
            assert_eq!(at(0x30), None, "after the end of a sequence");
            assert_eq!(at(0xfff), None);
            assert_eq!(at(0x1009), Some(("/src/a.c", 18, 9)));
            assert_eq!(at(0x1010), None);
            assert_eq!(at(u64::MAX), None);
            assert_eq!(map.row_count(), 8);
            assert_eq!(map.rows().count(), 8);
        }
    }

    #[test]
    fn same_address_rows_keep_the_last_and_beat_an_end() {
        let mut builder = SourceMapBuilder::new();
        let f = builder.file("f.c");
        builder.add_sequence(&[(0, f, 1, 0), (0x10, f, 2, 0)], 0x20);
        // Starts where the first ends; its first row is replaced by a later one.
        builder.add_sequence(&[(0x20, f, 7, 0), (0x20, f, 8, 0), (0x24, f, 8, 0)], 0x28);
        let bytes = builder.encode().unwrap();
        let map = SourceMap::parse(&bytes).unwrap();
        let lines: Vec<_> = map.rows().map(|r| (r.address, r.line)).collect();
        assert_eq!(lines, [(0, 1), (0x10, 2), (0x20, 8), (0x28, 0)]);
    }

    #[test]
    fn rows_at_the_end_of_their_sequence_are_left_out() {
        let mut builder = SourceMapBuilder::new();
        let f = builder.file("f.c");
        // A row at the sequence's end address describes no code; the table still ends with
        // an end row there.
        builder.add_sequence(&[(0, f, 1, 0), (0x10, f, 2, 0), (0x20, f, 30, 0)], 0x20);
        let bytes = builder.encode().unwrap();
        let map = SourceMap::parse(&bytes).unwrap();
        let lines: Vec<_> = map.rows().map(|r| (r.address, r.line)).collect();
        assert_eq!(lines, [(0, 1), (0x10, 2), (0x20, 0)]);
        // Only rows at the end: nothing.
        let mut builder = SourceMapBuilder::new();
        let f = builder.file("f.c");
        builder.add_sequence(&[(0x20, f, 30, 0)], 0x20);
        assert!(builder.is_empty());
    }

    #[test]
    fn every_truncation_and_byte_flip_is_an_error_or_a_valid_table() {
        let bytes = sample(2).encode().unwrap();
        for len in 0..bytes.len() {
            assert!(SourceMap::parse(&bytes[..len]).is_err(), "length {len}");
        }
        for at in 0..bytes.len() {
            for bit in 0..8 {
                let mut flipped = bytes.clone();
                flipped[at] ^= 1 << bit;
                if let Ok(map) = SourceMap::parse(&flipped) {
                    // Whatever a valid table says, reading it never panics.
                    let _ = map.rows().count();
                    for address in [0, 0x10, 0x20, 0x1008, u64::MAX] {
                        let _ = map.lookup(address);
                    }
                }
            }
        }
    }

    #[test]
    fn errors_name_what_is_wrong() {
        let bytes = sample(2).encode().unwrap();
        let error = |bytes: &[u8]| SourceMap::parse(bytes).unwrap_err().to_string();
        let mut bad = bytes.clone();
        bad[0] = 2;
        assert_eq!(
            error(&bad),
            "srcmap header: version is 2, this reader understands 1"
        );
        // The second block's address goes below the first block's last row.
        let mut bad = bytes.clone();
        bad[SOURCE_MAP_HEADER_SIZE + 16] = 0x10;
        assert_eq!(
            error(&bad),
            "srcmap block 1: address 0x10 is not above the previous row's (0x14)"
        );
        // The first row's file index (block 0 starts with file 0: no file byte) is fine; name
        // file 5 in the third row of the table.
        let mut builder = SourceMapBuilder::new();
        builder.add_sequence(&[(0, 5, 1, 0)], 4);
        assert!(
            builder
                .encode()
                .unwrap_err()
                .to_string()
                .contains("names file 5")
        );
    }
}
