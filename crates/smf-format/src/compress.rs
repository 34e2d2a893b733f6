//! Compressed payloads of loaded sections (the `COMPRESSED` module flag).
//!
//! A compressed payload is a 16-byte [`raw::CompressedHeader`] followed by exactly one zstd
//! frame (RFC 8878) that records its content size. The reader checks the declared sizes
//! (`raw_size` at most the section's `mem_size`, the frame's content size equal to
//! `raw_size`, one frame spanning the rest of the payload, the total under
//! [`crate::Limits::max_decompressed_size`]) before anything is decompressed, and
//! decompression writes into a buffer of exactly `raw_size` bytes: a frame that holds more
//! fails instead of growing anything. `docs/FORMAT.md`, *Compressed payloads*, is the
//! specification.

use std::borrow::Cow;

use zerocopy::FromBytes;

use crate::error::Error;
use crate::raw;
use crate::types::{SectionFlags, SectionKind};

/// The only compression algorithm of version 1: zstd.
pub const ALGORITHM_ZSTD: u32 = 1;

/// The zstd level the writer uses unless told otherwise: the slowest to compress, the
/// smallest file; decompression costs about the same at every level.
pub const DEFAULT_LEVEL: i32 = 19;

/// Which loaded payloads [`crate::ModuleBuilder`] compresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// None: every payload is mapped straight from the file.
    #[default]
    None,
    /// Every payload, tables included, that compression makes at least 1/[`MIN_SAVING`]
    /// smaller.
    All { level: i32 },
    /// As `All`, except `code` sections, which stay mapped straight from the file (shared
    /// between processes, no decompression at load).
    AllButCode { level: i32 },
}

/// The smallest part of a payload's size (1/8) compression must save for the writer to store
/// it compressed: below that, mapping the bytes is worth more than the file space.
pub const MIN_SAVING: u64 = 8;

impl Compression {
    /// The zstd level for tables, if payloads are compressed at all.
    pub(crate) fn table_level(self) -> Option<i32> {
        match self {
            Compression::None => None,
            Compression::All { level } | Compression::AllButCode { level } => Some(level),
        }
    }

    /// The zstd level to compress `kind`'s payload with, if it is to be compressed.
    pub(crate) fn level_for(self, kind: SectionKind) -> Option<i32> {
        match self {
            Compression::None => None,
            Compression::All { level } => Some(level),
            Compression::AllButCode { level } => (kind != SectionKind::Code).then_some(level),
        }
    }
}

/// Compresses `data` into a compressed payload (header and frame), or `None` when that does
/// not save at least 1/[`MIN_SAVING`] of its size.
pub(crate) fn compress_payload(data: &[u8], level: i32) -> Result<Option<Vec<u8>>, Error> {
    let frame = zstd::bulk::compress(data, level)
        .map_err(|e| Error::Build(format!("zstd compression failed: {e}")))?;
    let size = (size_of::<raw::CompressedHeader>() + frame.len()) as u64;
    let len = data.len() as u64;
    if size > len - len / MIN_SAVING {
        return Ok(None);
    }
    let header = raw::CompressedHeader {
        algorithm: ALGORITHM_ZSTD.into(),
        reserved: 0.into(),
        raw_size: len.into(),
    };
    let mut out = Vec::with_capacity(size as usize);
    out.extend_from_slice(zerocopy::IntoBytes::as_bytes(&header));
    out.extend_from_slice(&frame);
    Ok(Some(out))
}

/// A validated compressed payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compressed<'data> {
    /// The number of bytes the frame decompresses to: the section's initialised bytes; the
    /// rest of its `mem_size` is zero.
    pub raw_size: u64,
    /// The zstd frame.
    pub frame: &'data [u8],
}

impl Compressed<'_> {
    /// Decompresses into `out`, which must be exactly [`Compressed::raw_size`] bytes: the
    /// frame cannot write past it, and a frame that decodes to another size is an error.
    pub fn decompress_into(&self, out: &mut [u8]) -> Result<(), Error> {
        let bad = |problem: String| Error::malformed("compressed payload", problem);
        if out.len() as u64 != self.raw_size {
            return Err(bad(format!(
                "a buffer of {:#x} bytes for {:#x} decompressed bytes",
                out.len(),
                self.raw_size
            )));
        }
        let written = zstd::bulk::decompress_to_buffer(self.frame, out)
            .map_err(|e| bad(format!("zstd frame does not decode: {e}")))?;
        if written as u64 != self.raw_size {
            return Err(bad(format!(
                "zstd frame decodes to {written:#x} bytes, not the {:#x} declared",
                self.raw_size
            )));
        }
        Ok(())
    }

    /// Decompresses into a new buffer of [`Compressed::raw_size`] bytes.
    pub fn decompress(&self) -> Result<Vec<u8>, Error> {
        let len = usize::try_from(self.raw_size).map_err(|_| {
            Error::malformed(
                "compressed payload",
                "decompressed size does not fit memory",
            )
        })?;
        let mut out = vec![0; len];
        self.decompress_into(&mut out)?;
        Ok(out)
    }
}

/// Checks the compressed payload `data` of a section of `mem_size` bytes in memory (every
/// declared size, before anything is decompressed) and returns it; `location` names the
/// section in errors.
pub(crate) fn check_payload<'data>(
    data: &'data [u8],
    mem_size: u64,
    location: &dyn Fn() -> String,
) -> Result<Compressed<'data>, Error> {
    let bad = |problem: String| Error::malformed(location(), problem);
    let (header, frame) = raw::CompressedHeader::ref_from_prefix(data).map_err(|_| {
        bad(format!(
            "compressed payload of {:#x} bytes is shorter than its 16-byte header",
            data.len()
        ))
    })?;
    let algorithm = header.algorithm.get();
    if algorithm != ALGORITHM_ZSTD {
        return Err(bad(format!(
            "unknown compression algorithm {algorithm} (1 is zstd)"
        )));
    }
    if header.reserved.get() != 0 {
        return Err(bad(
            "compressed payload header: reserved word is not zero".into()
        ));
    }
    let raw_size = header.raw_size.get();
    if raw_size == 0 || raw_size > mem_size {
        return Err(bad(format!(
            "decompressed size {raw_size:#x} is not within 1..={mem_size:#x} (the memory size)"
        )));
    }
    match zstd::zstd_safe::get_frame_content_size(frame) {
        Ok(Some(size)) if size == raw_size => {}
        Ok(Some(size)) => {
            return Err(bad(format!(
                "zstd frame content size {size:#x} differs from the declared {raw_size:#x}"
            )));
        }
        Ok(None) => return Err(bad("zstd frame does not record its content size".into())),
        Err(_) => return Err(bad("payload after the header is not a zstd frame".into())),
    }
    match zstd::zstd_safe::find_frame_compressed_size(frame) {
        Ok(len) if len == frame.len() => {}
        Ok(len) => {
            return Err(bad(format!(
                "zstd frame ends at {len:#x} of the {:#x} bytes after the header",
                frame.len()
            )));
        }
        Err(_) => return Err(bad("zstd frame is truncated or corrupt".into())),
    }
    Ok(Compressed { raw_size, frame })
}

/// Whether section flags mark a compressed payload.
pub(crate) fn is_compressed(flags: SectionFlags) -> bool {
    flags.contains(SectionFlags::COMPRESSED)
}

/// The initialised bytes of a section with payload `data`: `data` itself, or the
/// decompressed payload.
pub(crate) fn payload<'data>(
    flags: SectionFlags,
    data: &'data [u8],
    mem_size: u64,
) -> Result<Cow<'data, [u8]>, Error> {
    if !is_compressed(flags) {
        return Ok(Cow::Borrowed(data));
    }
    let compressed = check_payload(data, mem_size, &|| "section".to_owned())?;
    Ok(Cow::Owned(compressed.decompress()?))
}

/// The file `data` with its compressed tables decompressed, ready for [`crate::Module::parse`]
/// (which views tables in place and refuses compressed ones): each decompressed table is
/// appended, 8-aligned, to a copy of the file, and its section entry points there without
/// the `COMPRESSED` flag; if no compressed payload is left, the header's `COMPRESSED` flag
/// is cleared too. `Ok(None)` when no table is compressed (or `data` is too damaged to
/// tell: the parse then says what is wrong).
///
/// The module hash stays the hash of the file as stored: check it on `data`
/// ([`crate::compute_module_hash`]) before expanding, as `smf verify` and the loader do.
/// Declared sizes are checked before anything is decompressed, and all compressed tables
/// together may decompress to at most `limits.max_decompressed_size` bytes.
pub fn expand_tables(data: &[u8], limits: &crate::Limits) -> Result<Option<Vec<u8>>, Error> {
    let Ok((head, _)) = raw::Header::ref_from_prefix(data) else {
        return Ok(None);
    };
    let table = usize::try_from(head.section_table_offset.get())
        .ok()
        .and_then(|offset| {
            let n = usize::try_from(head.section_count.get()).ok()?;
            let end = n
                .checked_mul(size_of::<raw::SectionHeader>())?
                .checked_add(offset)?;
            <[raw::SectionHeader]>::ref_from_bytes(data.get(offset..end)?).ok()
        });
    let Some(table) = table else {
        return Ok(None);
    };
    let compressed_tables: Vec<usize> = (0..table.len())
        .filter(|&i| {
            let s = &table[i];
            is_compressed(SectionFlags(s.flags.get()))
                && SectionKind::try_from(s.kind.get()).is_ok_and(|k| !k.is_loaded())
        })
        .collect();
    if compressed_tables.is_empty() {
        return Ok(None);
    }
    let mut out = data.to_vec();
    let mut budget = limits.max_decompressed_size;
    let mut entries = Vec::with_capacity(compressed_tables.len());
    for &i in &compressed_tables {
        let s = &table[i];
        let location = || format!("section {i} (compressed table)");
        let payload = usize::try_from(s.file_offset.get())
            .ok()
            .zip(usize::try_from(s.file_size.get()).ok())
            .and_then(|(offset, size)| data.get(offset..offset.checked_add(size)?))
            .ok_or_else(|| {
                Error::malformed(location(), "compressed payload lies outside the file")
            })?;
        // A table has no memory size: its declared size is bounded by what is left of the
        // limit.
        let compressed = check_payload(payload, budget, &location).map_err(|e| match e {
            Error::Malformed { problem, .. } if problem.starts_with("decompressed size") => {
                Error::LimitExceeded {
                    what: "decompressed size of compressed payloads",
                    value: compressed_raw_size(payload),
                    limit: limits.max_decompressed_size,
                }
            }
            other => other,
        })?;
        budget -= compressed.raw_size;
        let at = out.len().next_multiple_of(8);
        out.resize(at, 0);
        let len = out.len();
        out.resize(len + compressed.raw_size as usize, 0);
        compressed.decompress_into(&mut out[len..])?;
        entries.push((i, at as u64, compressed.raw_size));
    }
    let table_offset = head.section_table_offset.get() as usize;
    for (i, offset, size) in entries {
        let at = table_offset + i * size_of::<raw::SectionHeader>();
        let (entry, _) = raw::SectionHeader::mut_from_prefix(&mut out[at..])
            .map_err(|_| Error::malformed("section table", "cannot be viewed as a table"))?;
        entry.file_offset = offset.into();
        entry.file_size = size.into();
        entry.flags = (entry.flags.get() & !SectionFlags::COMPRESSED.0).into();
    }
    let payloads_left = table.iter().enumerate().any(|(i, s)| {
        is_compressed(SectionFlags(s.flags.get())) && !compressed_tables.contains(&i)
    });
    if !payloads_left {
        let (header, _) = raw::Header::mut_from_prefix(&mut out)
            .map_err(|_| Error::malformed("header", "cannot be viewed"))?;
        header.flags = (header.flags.get() & !crate::types::ModuleFlags::COMPRESSED.0).into();
    }
    Ok(Some(out))
}

/// The `raw_size` a compressed payload declares (0 if it is too short to have one).
fn compressed_raw_size(payload: &[u8]) -> u64 {
    raw::CompressedHeader::ref_from_prefix(payload).map_or(0, |(h, _)| h.raw_size.get())
}
