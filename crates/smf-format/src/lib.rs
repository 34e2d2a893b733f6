//! The Simple Module Format (SMF), version 1: structures, a validating reader and a writer.
//!
//! This crate does no I/O and holds no `unsafe`: it turns bytes into a checked [`Module`]
//! and a [`ModuleBuilder`] description into bytes. `docs/FORMAT.md` in the repository is the
//! byte-exact specification.
//!
//! ```
//! use smf_format::*;
//!
//! let mut builder = ModuleBuilder::new();
//! let mut layout = ImageLayout::new();
//! let code = vec![0xb8, 0x2a, 0, 0, 0, 0xc3]; // mov eax, 42; ret
//! let vaddr = layout.place(code.len() as u64).unwrap();
//! let text = builder.add_section(LoadedSection {
//!     kind: SectionKind::Code, name: ".text", vaddr, mem_size: code.len() as u64, align: 16, data: code,
//! });
//! builder.add_symbol(Symbol {
//!     name: "answer", kind: SymbolKind::Function, binding: Binding::Global,
//!     visibility: Visibility::Default, section: Some(text), value: vaddr, size: 6,
//!     type_id: 0, version: 1,
//! });
//! let bytes = builder.write().unwrap();
//!
//! let module = Module::parse(&bytes).unwrap();
//! module.verify_hash().unwrap();
//! assert_eq!(module.lookup("answer").unwrap().size, 6);
//! ```
#![forbid(unsafe_code)]

pub mod compress;
mod demangle;
mod error;
pub mod raw;
pub mod read;
pub mod report;
pub mod srcmap;
pub mod typeinfo;
pub mod types;
pub mod version;
pub mod write;

pub use compress::{Compressed, Compression, expand_tables};
pub use demangle::{demangle, with_demangled};
pub use error::Error;
pub use read::{
    HeaderInfo, Import, Limits, Module, Placed, RelativeIter, RelativeRelocations, Reloc,
    RelocIter, Relocations, Section, Summary, Symbol, SymbolIter, Symbols, compute_module_hash,
    head_len, head_len_of,
};
pub use srcmap::{SourceLocation, SourceMap, SourceMapBuilder, SourceRow};
pub use types::*;
pub use version::{Dependency, ReqOp, Version, VersionReq, VersionTable, Versions};
pub use write::{ImageLayout, LoadedSection, ModuleBuilder};
