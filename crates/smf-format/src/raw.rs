//! On-disk structures of SMF version 1, byte for byte.
//!
//! Every field is a little-endian integer type from `zerocopy` with alignment 1, so a
//! structure can be viewed in place inside any byte slice: there is no padding, no enum and
//! no pointer in these types, and every bit pattern is a valid value. The meaning of the
//! integers (and which values are allowed) is decided by [`crate::read`], which turns them into
//! the typed values of [`crate::types`]. `docs/FORMAT.md` is the specification of these layouts.

use zerocopy::little_endian::{I64, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// The four bytes every SMF file starts with.
pub const MAGIC: [u8; 4] = *b"SMF\0";
/// The major format version this crate reads and writes.
pub const VERSION_MAJOR: u8 = 1;
/// The minor format version this crate writes. Readers accept any minor version of major 1.
pub const VERSION_MINOR: u8 = 0;
/// The smallest page size a module is laid out for (4 KiB), and that of every module whose
/// header has [`Header::page_order`] 0. Loaded sections start on a page boundary in memory
/// and, when they have file bytes, in the file too, so the payload can be mapped straight from
/// the file; the page is `PAGE_SIZE << page_order`.
pub const PAGE_SIZE: u64 = 4096;
/// The largest [`Header::page_order`]: 64 KiB pages (`PAGE_SIZE << 4`).
pub const MAX_PAGE_ORDER: u8 = 4;
/// Marker for "no index" in the hash table and in [`Symbol::section`].
pub const NONE: u32 = u32::MAX;

/// Size of one Windows x64 `RUNTIME_FUNCTION` entry of a `pdata` section: three `u32` image
/// offsets (begin, end, unwind information).
pub const PDATA_ENTRY_SIZE: u64 = 12;

/// File header, at offset 0 (128 bytes).
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct Header {
    pub magic: [u8; 4],
    pub version_major: u8,
    pub version_minor: u8,
    pub platform: u8,
    pub arch: u8,
    pub flags: U32,
    pub section_count: U32,
    pub section_table_offset: U64,
    pub image_size: U64,
    pub entry_point: U64,
    pub source_hash: U64,
    pub module_hash: [u8; 32],
    /// The page size the module is laid out for is `PAGE_SIZE << page_order`.
    pub page_order: u8,
    pub reserved: [u8; 47],
}

/// Byte range of [`Header::module_hash`] inside the file; it is zero while the hash is computed.
pub const MODULE_HASH_RANGE: core::ops::Range<usize> = 0x30..0x50;

/// One entry of the section table (64 bytes).
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct SectionHeader {
    pub kind: U32,
    pub flags: U32,
    pub file_offset: U64,
    pub file_size: U64,
    pub vaddr: U64,
    pub mem_size: U64,
    pub align: U64,
    pub name: [u8; 16],
}

/// One entry of the symbol table (40 bytes).
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct Symbol {
    pub name_offset: U32,
    pub name_hash: U32,
    pub kind: u8,
    pub binding: u8,
    pub visibility: u8,
    pub flags: u8,
    pub section: U32,
    pub value: U64,
    pub size: U64,
    pub type_id: U32,
    pub version: U32,
}

/// One entry of the import table (24 bytes).
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct Import {
    pub name_offset: U32,
    pub name_hash: U32,
    pub kind: u8,
    pub binding: u8,
    pub reserved0: [u8; 2],
    pub type_id: U32,
    pub version: U32,
    pub reserved1: U32,
}

/// One load-time relocation (24 bytes).
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct Reloc {
    pub offset: U64,
    pub kind: U32,
    pub import: U32,
    pub addend: I64,
}

/// Start of the hash section (8 bytes), followed by `bucket_count` and then `chain_count`
/// little-endian `u32` values.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct HashHeader {
    pub bucket_count: U32,
    pub chain_count: U32,
}

/// One entry of a `pdata` section (12 bytes): a Windows x64 `RUNTIME_FUNCTION`, whose three
/// fields are image offsets (RVAs from the image base).
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct RuntimeFunction {
    pub begin: U32,
    pub end: U32,
    pub unwind_info: U32,
}

/// One entry of a `fingerprints` table (16 bytes): the fingerprint of the exported function
/// that symbol-table entry `symbol` is (see `docs/FORMAT.md`, *Function fingerprints*).
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct Fingerprint {
    pub symbol: U32,
    pub reserved: U32,
    pub fingerprint: U64,
}

/// The start of a compressed payload (16 bytes), followed by one zstd frame: see
/// `docs/FORMAT.md`, *Compressed payloads*.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct CompressedHeader {
    /// 1: zstd.
    pub algorithm: U32,
    pub reserved: U32,
    /// Bytes the frame decompresses to, at most the section's `mem_size`.
    pub raw_size: U64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_match_the_specification() {
        assert_eq!(size_of::<Header>(), 128);
        assert_eq!(size_of::<SectionHeader>(), 64);
        assert_eq!(size_of::<Symbol>(), 40);
        assert_eq!(size_of::<Import>(), 24);
        assert_eq!(size_of::<Reloc>(), 24);
        assert_eq!(size_of::<HashHeader>(), 8);
        assert_eq!(size_of::<Fingerprint>(), 16);
        assert_eq!(size_of::<RuntimeFunction>() as u64, PDATA_ENTRY_SIZE);
        assert_eq!(size_of::<CompressedHeader>(), 16);
        assert_eq!(
            core::mem::offset_of!(Header, module_hash),
            MODULE_HASH_RANGE.start
        );
    }
}
