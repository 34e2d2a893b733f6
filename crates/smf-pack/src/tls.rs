//! Thread-local storage: the template, and the GOT entries through which code reaches it.
//!
//! A module's `.tdata` and `.tbss` pieces become one `tls` section, the template every
//! thread's copy starts from: the initialised pieces first (their bytes are the section's
//! file bytes), then the zero-filled ones (the rest of its memory size). An offset into that
//! section is what the ELF psABI calls a DTP offset: the distance of a variable from the start
//! of the module's thread-local block.
//!
//! Code compiled with `-fPIC` reaches a thread-local through a 16-byte GOT entry, of one of
//! three [`Access`] kinds:
//! - general- and local-dynamic: `__tls_get_addr(&pair)`, `pair` a `tls_index` of the
//!   module's block handle, which only the loader knows (a [`RelocKind::TlsModule`] load-time
//!   relocation), and the variable's DTP offset (`R_X86_64_TLSGD`) or 0 (`R_X86_64_TLSLD`,
//!   whose variables are then addressed with `R_X86_64_DTPOFF32`/`DTPOFF64` offsets from the
//!   result). The loader provides `__tls_get_addr` to modules that have a `tls` section.
//! - initial-exec (`R_X86_64_GOTTPOFF`): a word holding the variable's offset from the thread
//!   pointer, a [`RelocKind::TpOffset`] relocation (the second word is unused);
//! - TLS descriptors (`R_X86_64_GOTPC32_TLSDESC`, `-mtls-dialect=gnu2`): the loader's
//!   descriptor function ([`RelocKind::TlsDescriptor`]), then the variable's offset from the
//!   thread pointer ([`RelocKind::TpOffset`]); the local-dynamic form names
//!   `_TLS_MODULE_BASE_`, the start of the block.
//!
//! On aarch64 the same three entries serve `R_AARCH64_TLSGD_*`, `R_AARCH64_TLSIE_*` and
//! `R_AARCH64_TLSDESC_*` (the `-fPIC` default there), reached by an ADRP and a `_LO12` load or
//! add instead of one PC-relative field; the descriptor's two words are the same, and the
//! loader's function follows aarch64's convention (descriptor address in and offset out in
//! `x0`).
//!
//! The last two make the loader give the module a static block (docs/FORMAT.md). Local-exec
//! code (`R_X86_64_TPOFF32`, `R_AARCH64_TLSLE_*`) has the offset built into its instructions,
//! which would then be written at load time; as for a shared library, it is refused.

use std::collections::HashMap;

use smf_format::{Reloc, RelocKind};

use crate::error::Error;
use crate::input::{InputSection, Object, SectionClass};
use crate::layout::{Layout, OutputKind};
use crate::resolve::SymbolRef;

/// Size of one GOT entry for a thread-local: two 8-byte words.
pub(crate) const ENTRY_SIZE: u64 = 16;

/// Whether a TLS input section is zero-filled (`.tbss`, `SHT_NOBITS`): it has a size but no
/// bytes in the file.
pub(crate) fn is_zero_filled(section: &InputSection<'_>) -> bool {
    section.size > 0 && section.data.len() as u64 != section.size
}

/// How code reaches a thread-local through its GOT entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Access {
    /// A `tls_index` pair for `__tls_get_addr`.
    Dynamic,
    /// A word holding the offset from the thread pointer.
    InitialExec,
    /// A TLS descriptor: function, then offset from the thread pointer.
    Descriptor,
}

/// The GOT entries the relocations need, each for one access kind and variable; `None` is
/// the module's local-dynamic `tls_index` pair, whose offset is 0.
#[derive(Debug, Default)]
pub(crate) struct TlsNeeds {
    pub entries: Vec<(Access, Option<SymbolRef>)>,
    index: HashMap<(Access, Option<SymbolRef>), u32>,
}

impl TlsNeeds {
    pub fn add(&mut self, access: Access, variable: Option<SymbolRef>) {
        let key = (access, variable);
        if !self.index.contains_key(&key) {
            self.index.insert(key, self.entries.len() as u32);
            self.entries.push(key);
        }
    }

    pub fn entry(&self, access: Access, variable: Option<SymbolRef>) -> Option<u32> {
        self.index.get(&(access, variable)).copied()
    }
}

/// Refuses a module whose thread-locals are aligned beyond its architecture's
/// [`Arch::static_tls_align`](crate::arch::Arch) if its code reaches them at a fixed offset
/// from the thread pointer: glibc would refuse its static block at load, whatever its
/// reserve. The dynamic models have no such limit.
///
/// glibc gives a library it loads after start-up (the loader's carrier object) a static block
/// only if the block's alignment is at most `dl_tls_static_align`, the alignment of every
/// thread pointer: `TCB_ALIGNMENT` (64 on x86-64, 32 on aarch64), or more only if the
/// program's own thread-locals (those of the executable and the libraries loaded with it) ask
/// for more. Over-allocating and aligning inside the block would not do: initial-exec code
/// adds one constant to the thread pointer, and thread pointers agree only modulo that
/// alignment.
pub(crate) fn check_static_alignment(
    needs: &TlsNeeds,
    objects: &[Object<'_>],
    layout: &Layout,
) -> Result<(), Error> {
    let align = layout.output(OutputKind::Tls).align;
    // Every object has the same architecture (`crate::input` refuses a mix).
    let Some(limit) = objects.first().map(|o| o.arch.static_tls_align) else {
        return Ok(());
    };
    if align <= limit {
        return Ok(());
    }
    let model = if needs.entries.iter().any(|(a, _)| *a == Access::InitialExec) {
        "initial-exec accesses"
    } else if needs.entries.iter().any(|(a, _)| *a == Access::Descriptor) {
        "TLS descriptors"
    } else {
        return Ok(());
    };
    let (file, section) = objects
        .iter()
        .flat_map(|o| o.sections.iter().map(move |s| (o.name, s)))
        .filter(|(_, s)| s.class == SectionClass::Loaded(OutputKind::Tls) && !s.discarded)
        .max_by_key(|(_, s)| s.align)
        .map_or(("", ""), |(file, s)| (file, s.name));
    Err(Error::UnsupportedSection {
        file: file.to_owned(),
        section: section.to_owned(),
        problem: format!(
            "thread-locals aligned to {align} bytes, reached by {model} in this module: \
             those need a static TLS block from glibc, which it aligns to at most \
             {limit} bytes (its thread pointers' alignment) for code loaded \
             after start-up, whatever its reserve; align them to at most \
             {limit} bytes, or compile without -ftls-model=initial-exec and \
             -mtls-dialect=gnu2 (the general- and local-dynamic models allow any alignment)"
        ),
    })
}

/// The DTP offset of an image address: its distance from the start of the `tls` section,
/// or `None` if the address does not lie in it (the end counts, for zero-sized variables).
pub(crate) fn dtp_offset(layout: &Layout, address: i128) -> Option<i128> {
    let tls = layout.output(OutputKind::Tls);
    let start = i128::from(tls.vaddr);
    (tls.size > 0 && address >= start && address <= start + i128::from(tls.size))
        .then_some(address - start)
}

/// Writes each GOT entry: the offsets known now, relocations for what the loader knows.
/// `offset_of` gives the DTP offset of a variable.
pub(crate) fn fill_entries(
    needs: &TlsNeeds,
    layout: &mut Layout,
    offset_of: impl Fn(&Layout, SymbolRef) -> Option<i128>,
    load_relocs: &mut Vec<Reloc>,
) -> Result<(), Error> {
    for (index, (access, variable)) in needs.entries.iter().enumerate() {
        let address = layout.tls_entry(index as u32);
        let offset = match variable {
            None => 0,
            Some(target) => offset_of(layout, *target).ok_or_else(|| {
                Error::Layout(format!(
                    "thread-local GOT entry {index} names no thread-local variable"
                ))
            })?,
        };
        let offset = i64::try_from(offset).map_err(|_| {
            Error::Layout(format!(
                "thread-local GOT entry {index}: offset {offset:#x} out of range"
            ))
        })?;
        let mut reloc = |offset, kind, addend| {
            load_relocs.push(Reloc {
                offset,
                kind,
                import: None,
                addend,
            })
        };
        match access {
            Access::Dynamic => {
                layout.write(address + 8, &offset.to_le_bytes())?;
                reloc(address, RelocKind::TlsModule, 0);
            }
            Access::InitialExec => reloc(address, RelocKind::TpOffset, offset),
            Access::Descriptor => {
                reloc(address, RelocKind::TlsDescriptor, 0);
                reloc(address + 8, RelocKind::TpOffset, offset);
            }
        }
    }
    Ok(())
}
