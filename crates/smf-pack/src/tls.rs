//! Thread-local storage: the template and the `tls_index` pairs of the dynamic models.
//!
//! A module's `.tdata` and `.tbss` pieces become one `tls` section, the template every
//! thread's copy starts from: the initialised pieces first (their bytes are the section's
//! file bytes), then the zero-filled ones (the rest of its memory size). An offset into that
//! section is what the ELF psABI calls a DTP offset: the distance of a variable from the start
//! of the module's thread-local block.
//!
//! Code compiled with `-fPIC` reaches thread-locals through `__tls_get_addr(&pair)`, where
//! `pair` is a two-word `tls_index` in the GOT: the module's block handle, which only the
//! loader knows (a [`RelocKind::TlsModule`] load-time relocation), and the variable's DTP
//! offset (general-dynamic, `R_X86_64_TLSGD`) or 0 (local-dynamic, `R_X86_64_TLSLD`, whose
//! variables are then addressed with `R_X86_64_DTPOFF32`/`DTPOFF64` offsets from the result).
//! The loader provides `__tls_get_addr` to modules that have a `tls` section. The static
//! models (initial-exec, local-exec) and TLS descriptors address thread-locals from the
//! thread pointer at a fixed offset, which the C library hands out only to the objects its own
//! dynamic linker loads, so they are refused.

use std::collections::HashMap;

use object::elf;
use smf_format::{Reloc, RelocKind};

use crate::error::Error;
use crate::input::InputSection;
use crate::layout::{Layout, OutputKind};
use crate::resolve::SymbolRef;

/// Size of one `tls_index` pair: module handle, then offset, 8 bytes each.
pub(crate) const PAIR_SIZE: u64 = 16;

/// Whether a TLS input section is zero-filled (`.tbss`, `SHT_NOBITS`): it has a size but no
/// bytes in the file.
pub(crate) fn is_zero_filled(section: &InputSection<'_>) -> bool {
    section.size > 0 && section.data.len() as u64 != section.size
}

/// The `tls_index` pairs the relocations need: one per variable reached with the
/// general-dynamic model (`Some`), and one for the module's local-dynamic base (`None`).
#[derive(Debug, Default)]
pub(crate) struct TlsNeeds {
    pub pairs: Vec<Option<SymbolRef>>,
    index: HashMap<Option<SymbolRef>, u32>,
}

impl TlsNeeds {
    pub fn add(&mut self, variable: Option<SymbolRef>) {
        if !self.index.contains_key(&variable) {
            self.index.insert(variable, self.pairs.len() as u32);
            self.pairs.push(variable);
        }
    }

    pub fn pair(&self, variable: Option<SymbolRef>) -> Option<u32> {
        self.index.get(&variable).copied()
    }
}

/// The model a refused TLS relocation type belongs to, for the message.
pub(crate) fn refused_model(r_type: u32) -> Option<&'static str> {
    match elf::RelocationType(r_type) {
        elf::R_X86_64_GOTTPOFF
        | elf::R_X86_64_CODE_4_GOTTPOFF
        | elf::R_X86_64_CODE_5_GOTTPOFF
        | elf::R_X86_64_CODE_6_GOTTPOFF => Some("initial-exec"),
        elf::R_X86_64_TPOFF32 | elf::R_X86_64_TPOFF64 => Some("local-exec"),
        elf::R_X86_64_GOTPC32_TLSDESC
        | elf::R_X86_64_TLSDESC_CALL
        | elf::R_X86_64_TLSDESC
        | elf::R_X86_64_CODE_4_GOTPC32_TLSDESC
        | elf::R_X86_64_CODE_5_GOTPC32_TLSDESC
        | elf::R_X86_64_CODE_6_GOTPC32_TLSDESC => Some("TLS descriptor (-mtls-dialect=gnu2)"),
        _ => None,
    }
}

/// The DTP offset of an image address: its distance from the start of the `tls` section,
/// or `None` if the address does not lie in it (the end counts, for zero-sized variables).
pub(crate) fn dtp_offset(layout: &Layout, address: i128) -> Option<i128> {
    let tls = layout.output(OutputKind::Tls);
    let start = i128::from(tls.vaddr);
    (tls.size > 0 && address >= start && address <= start + i128::from(tls.size))
        .then_some(address - start)
}

/// Writes each `tls_index` pair: the offset now, the module handle at load time.
/// `offset_of` gives the DTP offset of a general-dynamic variable.
pub(crate) fn fill_pairs(
    needs: &TlsNeeds,
    layout: &mut Layout,
    offset_of: impl Fn(&Layout, SymbolRef) -> Option<i128>,
    load_relocs: &mut Vec<Reloc>,
) -> Result<(), Error> {
    for (index, variable) in needs.pairs.iter().enumerate() {
        let address = layout.tls_pair(index as u32);
        let offset = match variable {
            None => 0,
            Some(target) => offset_of(layout, *target).ok_or_else(|| {
                Error::Layout(format!(
                    "tls_index pair {index} names no thread-local variable"
                ))
            })?,
        };
        let offset = u64::try_from(offset).map_err(|_| {
            Error::Layout(format!(
                "tls_index pair {index}: offset {offset:#x} out of range"
            ))
        })?;
        layout.write(address + 8, &offset.to_le_bytes())?;
        load_relocs.push(Reloc {
            offset: address,
            kind: RelocKind::TlsModule,
            import: None,
            addend: 0,
        });
    }
    Ok(())
}
