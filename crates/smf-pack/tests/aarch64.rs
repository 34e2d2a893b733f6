//! aarch64 objects, packed on any host: real C and C++ compiled by aarch64-linux-gnu-gcc at
//! -O0, -O2 and -O3 with -fPIC, checked against GNU ld's link of the same object.
//!
//! The differential check: the object is packed into a module and linked by
//! `aarch64-linux-gnu-gcc -shared`. For every relocation in the object's code, both outputs
//! are decoded at that instruction (ADRP pages, the `_LO12` offsets that complete them, branch
//! targets) and what the instruction reaches is named: a function or variable and an offset, an
//! import, a GOT slot and what it holds, a TLS descriptor or initial-exec entry and its
//! variable, or the bytes there for anonymous constants. Both outputs must name the same thing
//! for every relocation, and every other byte of every function must be the same.
//!
//! Without the cross compiler the tests print "skipped: aarch64-linux-gnu-gcc not found" and
//! pass, unless SMF_REQUIRE_CROSS is set (as `.ci/run` does), where they fail.
//!
//! Not built for Windows: the tests compile their inputs with the system C compiler (`cc`,
//! a Linux program under Wine, whose exit status a Windows process cannot get). The packer's
//! own unit tests run for Windows (README, "Windows").
#![cfg(unix)]

mod util;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::Command;

use object::elf;
use object::read::elf::{ElfFile64, FileHeader, SectionHeader as _};
use object::{
    LittleEndian, Object, ObjectSection, ObjectSymbol, ObjectSymbolTable, RelocationTarget,
    SymbolKind,
};
use smf_format::{Module, RelocKind};
use smf_pack::{Input, Options};
use util::TempDir;

const GCC: &str = "aarch64-linux-gnu-gcc";
const GXX: &str = "aarch64-linux-gnu-g++";

/// Whether the cross compiler can run; panics if it cannot and SMF_REQUIRE_CROSS is set.
fn cross_available() -> bool {
    let found = Command::new(GCC)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        if std::env::var_os("SMF_REQUIRE_CROSS").is_some() {
            panic!("{GCC} not found, and SMF_REQUIRE_CROSS is set");
        }
        println!("skipped: {GCC} not found");
    }
    found
}

/// Compiles `source` with `compiler` and `flags` into `dir`, returning the object's path.
fn compile(dir: &Path, compiler: &str, name: &str, source: &str, flags: &[&str]) -> Vec<u8> {
    let extension = if compiler == GXX { "cpp" } else { "c" };
    let src = dir.join(format!("{name}.{extension}"));
    let out = dir.join(format!("{name}.o"));
    std::fs::write(&src, source).unwrap();
    let output = Command::new(compiler)
        .arg("-c")
        .args(flags)
        .arg(&src)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{compiler} {flags:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::read(out).unwrap()
}

/// Links `object` into a shared library with GNU ld (through `compiler`, for its C or C++
/// libraries), as a reference.
fn link_shared(dir: &Path, compiler: &str, name: &str) -> Vec<u8> {
    let out = dir.join(format!("{name}.so"));
    let output = Command::new(compiler)
        .args(["-shared", "-o"])
        .arg(&out)
        .arg(dir.join(format!("{name}.o")))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{GCC} -shared failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::read(out).unwrap()
}

/// What a GOT slot of either output holds.
#[derive(Debug, Clone)]
enum Slot {
    /// Another module's symbol, plus an addend.
    Import(String, i64),
    /// An address of the image.
    Address(u64),
    /// A TLS descriptor of the thread-local at this offset in the block.
    Descriptor(u64),
    /// The offset from the thread pointer of the thread-local at this offset.
    InitialExec(u64),
    /// A `__tls_get_addr` pair: the module's block and this offset in it.
    Dynamic(u64),
}

/// One output (the module or the shared library) seen the same way.
struct Image {
    /// (address, bytes) of each loaded section with file bytes.
    sections: Vec<(u64, Vec<u8>)>,
    /// Named functions and variables: name → (address, size).
    symbols: HashMap<String, (u64, u64)>,
    /// Thread-locals: (offset in the block, size, name).
    tls: Vec<(u64, u64, String)>,
    slots: HashMap<u64, Slot>,
}

impl Image {
    fn bytes(&self, address: u64, len: usize) -> Option<&[u8]> {
        self.sections.iter().find_map(|(start, data)| {
            let offset = usize::try_from(address.checked_sub(*start)?).ok()?;
            data.get(offset..offset.checked_add(len)?)
        })
    }

    fn word(&self, address: u64) -> u32 {
        let bytes = self.bytes(address, 4).expect("instruction in the image");
        u32::from_le_bytes(bytes.try_into().unwrap())
    }

    fn from_module(bytes: &[u8]) -> Image {
        let module = Module::parse(bytes).unwrap();
        let sections = module
            .loaded_sections()
            .filter(|s| !s.data.is_empty())
            .map(|s| (s.vaddr, s.data.to_vec()))
            .collect();
        let tls_start = module
            .loaded_sections()
            .find(|s| s.kind == smf_format::SectionKind::Tls)
            .map_or(0, |s| s.vaddr);
        let tls_section = module
            .loaded_sections()
            .position(|s| s.kind == smf_format::SectionKind::Tls);
        let mut symbols = HashMap::new();
        let mut tls = Vec::new();
        for symbol in module.symbols().to_vec().unwrap() {
            // Assembler labels (`.LANCHOR0`) that reach the symbol table; ld drops them.
            if symbol.name.starts_with(".L") {
                continue;
            }
            if symbol.section.map(|s| s as usize) == tls_section && tls_section.is_some() {
                tls.push((
                    symbol.value - tls_start,
                    symbol.size,
                    symbol.name.to_owned(),
                ));
            } else {
                symbols.insert(symbol.name.to_owned(), (symbol.value, symbol.size));
            }
        }
        let mut slots = HashMap::new();
        for offset in module.relative_relocations().iter() {
            let word = u64::from_le_bytes(image_bytes(&module, offset));
            slots.insert(offset, Slot::Address(word));
        }
        for reloc in module.relocations().iter() {
            let slot = match reloc.kind {
                RelocKind::Abs64 => {
                    let import = &module.imports()[reloc.import.unwrap() as usize];
                    Slot::Import(import.name.to_owned(), reloc.addend)
                }
                RelocKind::Relative64 => Slot::Address(reloc.addend as u64),
                RelocKind::TlsDescriptor => continue,
                RelocKind::TlsModule => {
                    Slot::Dynamic(u64::from_le_bytes(image_bytes(&module, reloc.offset + 8)))
                }
                RelocKind::TpOffset => {
                    let descriptor = module.relocations().iter().any(|r| {
                        r.kind == RelocKind::TlsDescriptor && r.offset + 8 == reloc.offset
                    });
                    if descriptor {
                        slots.insert(reloc.offset - 8, Slot::Descriptor(reloc.addend as u64));
                        continue;
                    }
                    Slot::InitialExec(reloc.addend as u64)
                }
                other => panic!("unexpected {other:?} relocation"),
            };
            slots.insert(reloc.offset, slot);
        }
        Image {
            sections,
            symbols,
            tls,
            slots,
        }
    }

    fn from_shared(bytes: &[u8]) -> Image {
        let file = ElfFile64::<LittleEndian>::parse(bytes).unwrap();
        let sections = file
            .sections()
            .filter(|s| s.address() != 0 && s.kind() != object::SectionKind::UninitializedData)
            .filter_map(|s| Some((s.address(), s.data().ok()?.to_vec())))
            .collect();
        let mut symbols = HashMap::new();
        let mut tls = Vec::new();
        for symbol in file.symbols() {
            let Ok(name) = symbol.name() else { continue };
            if name.is_empty() || name.starts_with('$') || symbol.is_undefined() {
                continue;
            }
            match symbol.kind() {
                // ld defines the block's start for TLS descriptors of the local-dynamic form.
                SymbolKind::Tls if name == "_TLS_MODULE_BASE_" => {}
                SymbolKind::Tls => tls.push((symbol.address(), symbol.size(), name.to_owned())),
                SymbolKind::Text | SymbolKind::Data => {
                    symbols.insert(name.to_owned(), (symbol.address(), symbol.size()));
                }
                _ => {}
            }
        }
        let dynsym = file.dynamic_symbol_table().unwrap();
        let mut slots = HashMap::new();
        let relocs: Vec<_> = file.dynamic_relocations().into_iter().flatten().collect();
        let mut dtprel = HashMap::new();
        for (offset, reloc) in &relocs {
            if reloc.flags()
                == (object::RelocationFlags::Elf {
                    r_type: elf::R_AARCH64_TLS_DTPREL,
                })
            {
                let value = match reloc.target() {
                    RelocationTarget::Symbol(index) => {
                        dynsym.symbol_by_index(index).map_or(0, |s| s.address())
                    }
                    _ => 0,
                };
                dtprel.insert(*offset, value.wrapping_add(reloc.addend() as u64));
            }
        }
        let image = Image {
            sections,
            symbols,
            tls,
            slots: HashMap::new(),
        };
        for (offset, reloc) in relocs {
            let object::RelocationFlags::Elf { r_type } = reloc.flags() else {
                continue;
            };
            let symbol = match reloc.target() {
                RelocationTarget::Symbol(index) => dynsym.symbol_by_index(index).ok(),
                _ => None,
            };
            let value = symbol.as_ref().map_or(0, |s| s.address());
            let addend = reloc.addend() as u64;
            let import = symbol
                .as_ref()
                .filter(|s| s.is_undefined())
                .map(|s| (s.name().unwrap().to_owned(), reloc.addend()));
            let slot = match r_type {
                elf::R_AARCH64_RELATIVE => Slot::Address(addend),
                elf::R_AARCH64_GLOB_DAT | elf::R_AARCH64_JUMP_SLOT | elf::R_AARCH64_ABS64 => {
                    match import {
                        Some((name, addend)) => Slot::Import(name, addend),
                        None => Slot::Address(value.wrapping_add(addend)),
                    }
                }
                elf::R_AARCH64_TLSDESC => Slot::Descriptor(value.wrapping_add(addend)),
                elf::R_AARCH64_TLS_TPREL => Slot::InitialExec(value.wrapping_add(addend)),
                // The offset is a DTPREL relocation of the next word, or written there.
                elf::R_AARCH64_TLS_DTPMOD => {
                    Slot::Dynamic(dtprel.get(&(offset + 8)).copied().unwrap_or_else(|| {
                        u64::from_le_bytes(image.bytes(offset + 8, 8).unwrap().try_into().unwrap())
                    }))
                }
                _ => continue,
            };
            slots.insert(offset, slot);
        }
        Image { slots, ..image }
    }

    /// Names an address: the named function or variable holding it, the call stub or PLT
    /// entry at it, or the bytes there.
    fn name(&self, address: u64) -> String {
        self.name_sized(address, None)
    }

    /// As [`Image::name`]; an anonymous constant read by a load of `size` bytes is named by
    /// those bytes (otherwise by those up to a NUL, at most 16).
    fn name_sized(&self, address: u64, size: Option<usize>) -> String {
        // Exact starts first: a zero-sized function may share its address with the next one.
        let mut best: Option<(&str, u64)> = None;
        for (name, &(start, size)) in &self.symbols {
            let inside = address == start || (address > start && address < start + size);
            if inside && best.is_none_or(|(b, off)| (address - start, name.as_str()) < (off, b)) {
                best = Some((name, address - start));
            }
        }
        if let Some((name, offset)) = best {
            return format!("{name}+{offset:#x}");
        }
        // `adrp x16, slot; ldr x17, [x16, :lo12:slot]`: an import stub or PLT entry.
        if let (Some(adrp), Some(ldr)) = (self.bytes(address, 4), self.bytes(address + 4, 4)) {
            let adrp = u32::from_le_bytes(adrp.try_into().unwrap());
            let ldr = u32::from_le_bytes(ldr.try_into().unwrap());
            if adrp & 0x9f00_001f == 0x9000_0010 && ldr & 0xffc0_03ff == 0xf940_0211 {
                let slot = adrp_page(address, adrp) + u64::from((ldr >> 10) & 0xfff) * 8;
                // A call through a slot holding a function of the image calls that function.
                return match self.slots.get(&slot) {
                    Some(Slot::Address(target)) if *target != address => self.name(*target),
                    _ => format!("call through {}", self.slot_name(slot)),
                };
            }
        }
        if let Some(size) = size {
            return format!(
                "bytes {:02x?}",
                self.bytes(address, size).unwrap_or_default()
            );
        }
        let bytes = self.bytes(address, 16).unwrap_or_default();
        let text: Vec<u8> = bytes.iter().copied().take_while(|&b| b != 0).collect();
        format!("bytes {text:02x?}")
    }

    fn tls_name(&self, offset: u64) -> String {
        self.tls
            .iter()
            .filter(|(start, size, _)| offset >= *start && offset < start + size.max(&1))
            .min_by_key(|(start, size, name)| (offset - start, *size == 0, name.clone()))
            .map_or(format!("tls offset {offset:#x}"), |(start, _, name)| {
                format!("{name}+{:#x}", offset - start)
            })
    }

    fn slot_name(&self, slot: u64) -> String {
        match self.slots.get(&slot) {
            Some(Slot::Import(name, addend)) => format!("import {name}{addend:+#x}"),
            Some(Slot::Address(address)) => format!("got -> {}", self.name(*address)),
            Some(Slot::Descriptor(offset)) => format!("tls descriptor {}", self.tls_name(*offset)),
            Some(Slot::InitialExec(offset)) => format!("tp offset of {}", self.tls_name(*offset)),
            Some(Slot::Dynamic(offset)) => format!("tls_index of {}", self.tls_name(*offset)),
            None => format!("no slot at {slot:#x}"),
        }
    }
}

fn image_bytes(module: &Module<'_>, offset: u64) -> [u8; 8] {
    let section = module.section_at(offset).unwrap();
    let at = (offset - section.vaddr) as usize;
    section.data[at..at + 8].try_into().unwrap()
}

fn sext(value: u64, bits: u32) -> i64 {
    ((value << (64 - bits)) as i64) >> (64 - bits)
}

fn adrp_page(place: u64, insn: u32) -> u64 {
    let imm = u64::from((insn >> 29) & 3) | u64::from((insn >> 5) & 0x7_ffff) << 2;
    (place & !0xfff).wrapping_add((sext(imm, 21) << 12) as u64)
}

/// What family of address an ADRP/LO12 pair computes, to pair them up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Family {
    Address,
    Got,
    Descriptor,
    InitialExec,
    Dynamic,
    LocalDynamic,
}

/// How one relocated instruction is decoded.
enum Decode {
    Page(Family),
    Low12(Family, u32),
    Branch(u32),
    Adr,
    /// An ADD of a DTP offset (`lsl #12` when the flag is set).
    DtpOffset(bool),
    Ignore,
}

fn decode_kind(r_type: u32) -> Decode {
    use Family::*;
    match elf::RelocationType(r_type) {
        elf::R_AARCH64_ADR_PREL_PG_HI21 | elf::R_AARCH64_ADR_PREL_PG_HI21_NC => {
            Decode::Page(Address)
        }
        elf::R_AARCH64_ADD_ABS_LO12_NC | elf::R_AARCH64_LDST8_ABS_LO12_NC => {
            Decode::Low12(Address, 0)
        }
        elf::R_AARCH64_LDST16_ABS_LO12_NC => Decode::Low12(Address, 1),
        elf::R_AARCH64_LDST32_ABS_LO12_NC => Decode::Low12(Address, 2),
        elf::R_AARCH64_LDST64_ABS_LO12_NC => Decode::Low12(Address, 3),
        elf::R_AARCH64_LDST128_ABS_LO12_NC => Decode::Low12(Address, 4),
        elf::R_AARCH64_ADR_GOT_PAGE => Decode::Page(Got),
        // Paired with the ADRP of `_GLOBAL_OFFSET_TABLE_` (see `code_relocations`).
        elf::R_AARCH64_LD64_GOT_LO12_NC | elf::R_AARCH64_LD64_GOTPAGE_LO15 => Decode::Low12(Got, 3),
        elf::R_AARCH64_TLSDESC_ADR_PAGE21 => Decode::Page(Descriptor),
        elf::R_AARCH64_TLSDESC_LD64_LO12 => Decode::Low12(Descriptor, 3),
        elf::R_AARCH64_TLSDESC_ADD_LO12 => Decode::Low12(Descriptor, 0),
        elf::R_AARCH64_TLSIE_ADR_GOTTPREL_PAGE21 => Decode::Page(InitialExec),
        elf::R_AARCH64_TLSIE_LD64_GOTTPREL_LO12_NC => Decode::Low12(InitialExec, 3),
        elf::R_AARCH64_CALL26 | elf::R_AARCH64_JUMP26 => Decode::Branch(26),
        elf::R_AARCH64_CONDBR19 => Decode::Branch(19),
        elf::R_AARCH64_TSTBR14 => Decode::Branch(14),
        elf::R_AARCH64_ADR_PREL_LO21 => Decode::Adr,
        elf::R_AARCH64_TLSGD_ADR_PAGE21 => Decode::Page(Dynamic),
        elf::R_AARCH64_TLSGD_ADD_LO12_NC => Decode::Low12(Dynamic, 0),
        elf::R_AARCH64_TLSLD_ADR_PAGE21 => Decode::Page(LocalDynamic),
        elf::R_AARCH64_TLSLD_ADD_LO12_NC => Decode::Low12(LocalDynamic, 0),
        elf::R_AARCH64_TLSLD_ADD_DTPREL_HI12 => Decode::DtpOffset(true),
        elf::R_AARCH64_TLSLD_ADD_DTPREL_LO12_NC | elf::R_AARCH64_TLSLD_ADD_DTPREL_LO12 => {
            Decode::DtpOffset(false)
        }
        elf::R_AARCH64_TLSDESC_CALL => Decode::Ignore,
        _ => panic!("the test cannot decode relocation type {r_type}"),
    }
}

/// A relocation of the object's code: the function holding it, its offset there, its type,
/// and the key pairing ADRPs with their `_LO12`s (family, symbol index, addend).
struct CodeReloc {
    function: String,
    offset: u64,
    r_type: u32,
    key: (Family, usize, i64),
}

/// The code relocations of `object`, and each function's size.
fn code_relocations(object: &[u8]) -> (Vec<CodeReloc>, BTreeMap<String, u64>) {
    let file = ElfFile64::<LittleEndian>::parse(object).unwrap();
    let header = file.elf_header();
    assert_eq!(header.e_machine(LittleEndian), elf::EM_AARCH64);
    let mut functions = BTreeMap::new();
    let mut relocs = Vec::new();
    let got_symbol = file
        .symbols()
        .find(|s| s.name() == Ok("_GLOBAL_OFFSET_TABLE_"))
        .map(|s| s.index().0);
    for section in file.sections() {
        let flags = section.elf_section_header().sh_flags(LittleEndian);
        if !flags.contains(elf::SHF_EXECINSTR) {
            continue;
        }
        let in_section: Vec<_> = file
            .symbols()
            .filter(|s| s.kind() == SymbolKind::Text && s.section_index() == Some(section.index()))
            .map(|s| (s.name().unwrap().to_owned(), s.address(), s.size()))
            .collect();
        for (name, _, size) in &in_section {
            functions.insert(name.clone(), *size);
        }
        for (offset, reloc) in section.relocations() {
            let object::RelocationFlags::Elf { r_type } = reloc.flags() else {
                unreachable!()
            };
            let RelocationTarget::Symbol(symbol) = reloc.target() else {
                unreachable!()
            };
            let holders: Vec<_> = in_section
                .iter()
                .filter(|(_, start, size)| offset >= *start && offset < start + size)
                .collect();
            assert!(
                !holders.is_empty(),
                "relocation at {offset:#x} outside every function"
            );
            let r_type = r_type.0;
            let family = match decode_kind(r_type) {
                Decode::Page(family) | Decode::Low12(family, _) => family,
                _ => Family::Address,
            };
            // GOT and TLS entries are per symbol: their ADRP and `_LO12` pair whatever the addend.
            let addend = if family == Family::Address {
                reloc.addend()
            } else {
                0
            };
            // `-fpic`'s GOT loads are offsets from the page of the GOT's start, which an ADRP
            // of `_GLOBAL_OFFSET_TABLE_` gives.
            let key = if r_type == elf::R_AARCH64_LD64_GOTPAGE_LO15.0 {
                (
                    Family::Address,
                    got_symbol.expect("_GLOBAL_OFFSET_TABLE_"),
                    0,
                )
            } else {
                (family, symbol.0, addend)
            };
            // Aliases (C++ C1/C2 constructors) each get the relocations of their code.
            for (function, start, _) in holders {
                relocs.push(CodeReloc {
                    function: function.clone(),
                    offset: offset - start,
                    r_type,
                    key,
                });
            }
        }
    }
    (relocs, functions)
}

/// The 64-bit absolute addresses in the object's named data (vtables, pointer tables,
/// typeinfo): (variable, offset in it).
fn data_relocations(object: &[u8]) -> Vec<(String, u64)> {
    let file = ElfFile64::<LittleEndian>::parse(object).unwrap();
    let mut words = Vec::new();
    for section in file.sections() {
        let flags = section.elf_section_header().sh_flags(LittleEndian);
        if !flags.contains(elf::SHF_ALLOC)
            || flags.contains(elf::SHF_EXECINSTR)
            || flags.contains(elf::SHF_TLS)
        {
            continue;
        }
        let variables: Vec<_> = file
            .symbols()
            .filter(|s| s.kind() == SymbolKind::Data && s.section_index() == Some(section.index()))
            .map(|s| (s.name().unwrap().to_owned(), s.address(), s.size()))
            .collect();
        for (offset, reloc) in section.relocations() {
            if reloc.flags()
                != (object::RelocationFlags::Elf {
                    r_type: elf::R_AARCH64_ABS64,
                })
            {
                continue;
            }
            for (name, start, size) in &variables {
                if offset >= *start && offset < start + size {
                    words.push((name.clone(), offset - start));
                }
            }
        }
    }
    words
}

/// What every code relocation reaches in `image`, as (function, offset, text), and the
/// functions' bytes with the relocated instructions blanked.
fn decode(
    image: &Image,
    relocs: &[CodeReloc],
    functions: &BTreeMap<String, u64>,
) -> (Vec<(String, u64, String)>, BTreeMap<String, Vec<u8>>) {
    let place = |r: &CodeReloc| {
        let (start, _) = image
            .symbols
            .get(&r.function)
            .unwrap_or_else(|| panic!("function {} missing", r.function));
        start + r.offset
    };
    let mut pages: HashMap<(Family, usize, i64), u64> = HashMap::new();
    let mut result = Vec::new();
    for r in relocs {
        if let Decode::Page(_) = decode_kind(r.r_type) {
            let page = adrp_page(place(r), image.word(place(r)));
            let previous = pages.insert(r.key, page);
            assert!(
                previous.is_none_or(|p| p == page),
                "{}+{:#x}: ADRPs of one target disagree",
                r.function,
                r.offset
            );
        }
    }
    for r in relocs {
        let at = place(r);
        let insn = image.word(at);
        let text = match decode_kind(r.r_type) {
            Decode::Page(_) | Decode::Ignore => continue,
            Decode::Low12(family, scale) => {
                let page = pages
                    .get(&r.key)
                    .unwrap_or_else(|| panic!("{}+{:#x}: no ADRP", r.function, r.offset));
                let address = page + (u64::from((insn >> 10) & 0xfff) << scale);
                match family {
                    Family::Address if scale > 0 => image.name_sized(address, Some(1 << scale)),
                    Family::Address => image.name(address),
                    _ => image.slot_name(address),
                }
            }
            Decode::Branch(bits) => {
                let lsb = if bits == 26 { 0 } else { 5 };
                let imm = u64::from(insn >> lsb) & ((1 << bits) - 1);
                image.name(at.wrapping_add((sext(imm, bits) * 4) as u64))
            }
            Decode::Adr => {
                let imm = u64::from((insn >> 29) & 3) | u64::from((insn >> 5) & 0x7_ffff) << 2;
                image.name(at.wrapping_add(sext(imm, 21) as u64))
            }
            Decode::DtpOffset(high) => {
                let imm = u64::from((insn >> 10) & 0xfff);
                format!("dtp offset part {:#x}", if high { imm << 12 } else { imm })
            }
        };
        result.push((r.function.clone(), r.offset, text));
    }
    let mut bodies = BTreeMap::new();
    for (name, &size) in functions {
        let (start, _) = image.symbols[name];
        let mut bytes = image.bytes(start, size as usize).unwrap().to_vec();
        for r in relocs.iter().filter(|r| &r.function == name) {
            bytes[r.offset as usize..r.offset as usize + 4].fill(0);
        }
        bodies.insert(name.clone(), bytes);
    }
    (result, bodies)
}

/// Packs and links `source` at each optimisation level and compares the two outputs.
fn differential(compiler: &str, name: &str, source: &str, extra: &[&str]) {
    if !cross_available() {
        return;
    }
    let dir = TempDir::new();
    for level in ["-O0", "-O2", "-O3"] {
        let mut flags = vec![level];
        if !extra.contains(&"-fpic") {
            flags.push("-fPIC");
        }
        flags.extend_from_slice(extra);
        let object = compile(&dir.0, compiler, name, source, &flags);
        let module = smf_pack::pack(
            &[Input {
                name: format!("{name}.o"),
                data: object.clone(),
            }],
            &Options::default(),
        )
        .unwrap_or_else(|e| panic!("{name} {level}: {e}"));
        let parsed = Module::parse(&module).unwrap();
        assert_eq!(parsed.header().arch, smf_format::Arch::Aarch64);
        assert_eq!(parsed.header().page_size, 0x10000);
        let shared = link_shared(&dir.0, compiler, name);
        let (relocs, functions) = code_relocations(&object);
        assert!(
            relocs.len() > 5,
            "{name} {level}: too few relocations to compare"
        );
        let (ours, bodies) = decode(&Image::from_module(&module), &relocs, &functions);
        let (theirs, reference) = decode(&Image::from_shared(&shared), &relocs, &functions);
        for (a, b) in ours.iter().zip(&theirs) {
            assert_eq!(a, b, "{name} {level}: module vs ld");
        }
        assert_eq!(ours.len(), theirs.len());
        // Absolute addresses in data: what each word will hold once the loader (or the dynamic
        // linker) has relocated it.
        let words = data_relocations(&object);
        if compiler == GXX {
            assert!(
                words.len() > 10,
                "{name} {level}: too few data words to compare"
            );
        }
        let (ours, theirs) = (Image::from_module(&module), Image::from_shared(&shared));
        for (variable, offset) in &words {
            let at = |image: &Image| {
                let (start, _) = image.symbols[variable];
                image.slot_name(start + offset)
            };
            assert_eq!(
                at(&ours),
                at(&theirs),
                "{name} {level}: word {variable}+{offset:#x}"
            );
        }
        for (function, bytes) in &bodies {
            assert!(
                bytes == &reference[function],
                "{name} {level}: the bytes of {function} differ beyond its relocations"
            );
        }
    }
}

const C_PROGRAM: &str = r#"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct point { double x, y; long tag; };
static struct point points[64];
static int counter;
int shared_total = 7;
int table[256] = {1, 2, 3};
int *table_ptr = &table[3];
const char *names[] = {"zero", "one", "two", "three"};
__thread int per_thread = 5;
static __thread long local_thread[4];
extern __thread int ie_var __attribute__((tls_model("initial-exec")));
__thread int ie_var = 9;

static int helper(int x) { return x * 3 + counter++; }
__attribute__((noinline)) long scale(long v, double f) { return (long)(v * f * 1.5); }

int classify(int c) {
    switch (c) {
    case 0: return 11; case 1: return 22; case 2: return 33; case 3: return 44;
    case 4: return 55; case 5: return 66; case 6: return 77; default: return -1;
    }
}

int compute(int n) {
    int s = 0;
    for (int i = 0; i < n; i++) {
        s += helper(i) + table[i % 256] + classify(i & 7);
        points[i % 64].x += i * 0.5;
        points[i % 64].tag ^= i;
        if (s & (1 << 5)) s ^= 3;
    }
    return s + *table_ptr + shared_total;
}

int threads(int k) {
    local_thread[k & 3] += k;
    per_thread += k;
    ie_var += per_thread;
    return per_thread + (int)local_thread[k & 3] + ie_var;
}

char *greet(const char *who) {
    char *out = malloc(strlen(who) + 16);
    sprintf(out, "hello, %s %s", who, names[strlen(who) & 3]);
    return out;
}

int (*pick(int k))(int) { return k ? classify : helper; }

int main(int argc, char **argv) {
    char *g = greet(argc > 1 ? argv[1] : "world");
    printf("%s %d %d %ld\n", g, compute(argc + 40), threads(argc), scale(argc, 2.5));
    free(g);
    return pick(argc)(argc) > 100;
}
"#;

const CXX_PROGRAM: &str = r#"
#include <cstdio>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

struct Shape {
    virtual ~Shape() = default;
    virtual double area() const = 0;
    virtual std::string name() const { return "shape"; }
};
struct Square : Shape {
    double side;
    explicit Square(double s) : side(s) {}
    double area() const override { return side * side; }
    std::string name() const override { return "square"; }
};
struct Circle : Shape {
    double r;
    explicit Circle(double r) : r(r) {}
    double area() const override { return 3.14159 * r * r; }
};

thread_local std::vector<int> history;
thread_local int calls = 0;
static std::map<std::string, int> registry;

int checked_divide(int a, int b) {
    if (b == 0) throw std::invalid_argument("divide by zero");
    return a / b;
}

int run(int n) {
    std::vector<Shape *> shapes;
    for (int i = 0; i < n; i++) {
        if (i % 2) shapes.push_back(new Square(i));
        else shapes.push_back(new Circle(i));
    }
    double total = 0;
    for (auto *s : shapes) {
        total += s->area();
        registry[s->name()]++;
        delete s;
    }
    ++calls;
    history.push_back((int)total);
    try {
        return checked_divide((int)total, n - 3);
    } catch (const std::invalid_argument &e) {
        std::printf("caught: %s\n", e.what());
        return -1;
    }
}

int main() {
    std::printf("%d %d %d %zu\n", run(3), run(5), calls, history.size());
    return 0;
}
"#;

#[test]
fn c_matches_gnu_ld() {
    differential(GCC, "prog", C_PROGRAM, &[]);
}

#[test]
fn c_with_small_pic_matches_gnu_ld() {
    // -fpic: GOT loads as `ldr x0, [x0, #:gotpage_lo15:sym]` from the GOT's page.
    differential(GCC, "small", C_PROGRAM, &["-fpic"]);
}

#[test]
fn c_with_traditional_tls_matches_gnu_ld() {
    differential(GCC, "trad", C_PROGRAM, &["-mtls-dialect=trad"]);
}

#[test]
fn cxx_with_exceptions_and_thread_locals_matches_gnu_ld() {
    differential(GXX, "shapes", CXX_PROGRAM, &[]);
}

fn pack_error(inputs: &[Input]) -> String {
    smf_pack::pack(inputs, &Options::default())
        .map(|_| ())
        .expect_err("packing should fail")
        .to_string()
}

#[test]
fn unknown_and_unsupported_relocations_are_refused_by_name() {
    if !cross_available() {
        return;
    }
    let dir = TempDir::new();
    // The large code model keeps absolute addresses in a literal pool in the code.
    let source = "int counter; int *where(void) { return &counter; }";
    let object = compile(
        &dir.0,
        GCC,
        "large",
        source,
        &["-mcmodel=large", "-fno-pic"],
    );
    let error = pack_error(&[Input {
        name: "large.o".into(),
        data: object.clone(),
    }]);
    assert!(
        error.starts_with("large.o: section .text+0x")
            && error.contains("relocation R_AARCH64_ABS64 against `counter`")
            && error.ends_with("recompile with -fPIC"),
        "{error}"
    );
    // The relocation retyped: MOVW_UABS_G0_NC (a MOVK of an absolute address, which the packer
    // does not implement), then a number no ABI defines.
    let file = ElfFile64::<LittleEndian>::parse(&*object).unwrap();
    let rela = file
        .sections()
        .find(|s| s.name() == Ok(".rela.text"))
        .unwrap();
    let (entries, _) = rela.elf_section_header().file_range(LittleEndian).unwrap();
    let r_info = entries as usize + 8;
    for (r_type, name) in [
        (
            elf::R_AARCH64_MOVW_UABS_G0_NC.0,
            "R_AARCH64_MOVW_UABS_G0_NC",
        ),
        (999, "type 999"),
    ] {
        let mut patched = object.clone();
        patched[r_info..r_info + 4].copy_from_slice(&r_type.to_le_bytes());
        let error = pack_error(&[Input {
            name: "odd.o".into(),
            data: patched,
        }]);
        assert!(
            error.starts_with("odd.o: section .text+0x")
                && error.contains(&format!("relocation {name} against `"))
                && error.ends_with("this relocation type is not supported"),
            "{error}"
        );
    }
}

#[test]
fn local_exec_thread_locals_are_refused_as_in_a_shared_library() {
    if !cross_available() {
        return;
    }
    let dir = TempDir::new();
    let source = "__thread int t; int get(void) { return t; }";
    let object = compile(
        &dir.0,
        GCC,
        "le",
        source,
        &["-fPIC", "-ftls-model=local-exec"],
    );
    let error = pack_error(&[Input {
        name: "le.o".into(),
        data: object,
    }]);
    assert!(
        error.contains("relocation R_AARCH64_TLSLE_") && error.contains("local-exec"),
        "{error}"
    );
}

/// The types and source lines of an aarch64 `-g` object, as for x86-64: its DWARF's
/// references to other debug sections are `R_AARCH64_ABS32` relocations, its addresses
/// `R_AARCH64_ABS64` ones, and with `-ffunction-sections` each function's line sequence is
/// relocated against its own section.
#[test]
fn types_and_lines_come_from_aarch64_dwarf() {
    if !cross_available() {
        return;
    }
    let dir = TempDir::new();
    let source = "struct state { int hp; int mp; };\n\
                  struct state state = { 10, 20 };\n\
                  long add(long a, long b)\n\
                  {\n    return a + b;\n}\n\
                  void hurt(int by)\n\
                  {\n    state.hp -= by;\n}\n\
                  unsigned char *name(const char *s) { return (unsigned char *)s + state.mp; }\n";
    for flags in [&["-O0"][..], &["-O2", "-ffunction-sections"]] {
        let mut all = vec!["-fPIC", "-g"];
        all.extend(flags);
        let object = compile(&dir.0, GCC, "dwarf", source, &all);
        let bytes = smf_pack::pack(
            &[Input {
                name: "dwarf.o".into(),
                data: object,
            }],
            &Options::default(),
        )
        .unwrap_or_else(|e| panic!("{flags:?}: {e}"));
        let module = Module::parse(&bytes).unwrap();
        let symbol = |name: &str| util::symbol(&module, name);
        let types = module.types();
        for (name, expected) in [
            ("add", "fn(i64, i64) -> i64"),
            ("hurt", "fn(i32)"),
            // `char` is unsigned on aarch64.
            ("name", "fn(*u8) -> *u8"),
        ] {
            assert_eq!(
                types.display(symbol(name).type_id),
                expected,
                "{flags:?}: {name}"
            );
        }
        assert_eq!(
            types.describe_record(symbol("state").type_id).as_deref(),
            Some("struct state { hp: i32 @0, mp: i32 @4 } (8 bytes, align 4)"),
            "{flags:?}"
        );
        let lines = module.source_map().unwrap().expect("a source map");
        // Each function's first address maps to one of its own lines (gcc's rows at that
        // address run from the opening brace to, at -O2, the closing one).
        for (name, lines_of) in [("add", 3..=6), ("hurt", 7..=10)] {
            let at = lines
                .lookup(symbol(name).value)
                .unwrap_or_else(|| panic!("{flags:?}: no line for {name}"));
            assert!(
                at.file.ends_with("/dwarf.c") && lines_of.contains(&at.line),
                "{flags:?}: {name} starts at {at}, not in dwarf.c:{lines_of:?}"
            );
        }
    }
}

/// glibc aligns aarch64 thread pointers to 32 bytes (its generic `TCB_ALIGNMENT`), not 64 as
/// on x86-64: a module whose thread-locals are reached at a fixed offset from the thread
/// pointer may ask for 32 there, not 64. The dynamic model is not limited.
#[test]
fn static_tls_alignment_is_limited_to_aarch64_glibcs_32_bytes() {
    if !cross_available() {
        return;
    }
    let dir = TempDir::new();
    let pack_aligned = |align: u32, flags: &[&str]| {
        let source = format!(
            "__thread char buf[64] __attribute__((aligned({align}))) = \"x\";\n\
             char *get(void) {{ return buf; }}"
        );
        let mut all = vec!["-fPIC", "-O2"];
        all.extend(flags);
        let object = compile(&dir.0, GCC, "aligned", &source, &all);
        smf_pack::pack(
            &[Input {
                name: "aligned.o".into(),
                data: object,
            }],
            &Options::default(),
        )
        .map(|_| ())
        .map_err(|e| e.to_string())
    };
    for (flags, model) in [
        (&["-ftls-model=initial-exec"][..], "initial-exec accesses"),
        // aarch64's default dialect under -fPIC: TLS descriptors.
        (&[][..], "TLS descriptors"),
    ] {
        pack_aligned(32, flags).unwrap_or_else(|e| panic!("{flags:?}, 32 bytes: {e}"));
        let error = pack_aligned(64, flags).expect_err("64-byte static TLS on aarch64");
        for part in [
            "aligned.o: section .tdata: thread-locals aligned to 64 bytes",
            model,
            "aligns to at most 32 bytes",
            "align them to at most 32 bytes",
        ] {
            assert!(error.contains(part), "{flags:?}: {part:?} not in {error}");
        }
    }
    pack_aligned(4096, &["-mtls-dialect=trad"]).expect("the general-dynamic model");
}

#[test]
fn objects_of_two_architectures_are_refused_naming_both() {
    if !cross_available() {
        return;
    }
    let dir = TempDir::new();
    let arm = compile(&dir.0, GCC, "arm", "int f(void) { return 1; }", &["-fPIC"]);
    let x86 = util::compile("x86.o", "int g(void) { return 2; }", &["-fPIC"]);
    let error = pack_error(&[
        x86,
        Input {
            name: "arm.o".into(),
            data: arm,
        },
    ]);
    assert_eq!(
        error,
        "arm.o is an aarch64 object but x86.o is an x86-64 object; a module holds code of one \
         architecture"
    );
}

#[test]
fn undefined_symbols_are_looked_up_in_the_aarch64_c_library() {
    if !cross_available() {
        return;
    }
    let dir = TempDir::new();
    let source = r#"
        #include <stdio.h>
        int ioperm(unsigned long, unsigned long, int);
        int main(void) { printf("%d\n", 1); return ioperm(0x80, 1, 1); }
    "#;
    let object = compile(&dir.0, GCC, "undef", source, &["-fPIC"]);
    let options = Options {
        undefined: smf_pack::UndefinedSymbols::Error,
        ..Options::default()
    };
    let error = smf_pack::pack(
        &[Input {
            name: "undef.o".into(),
            data: object,
        }],
        &options,
    )
    .map(|_| ())
    .expect_err("ioperm is undefined on aarch64")
    .to_string();
    // printf is found in the aarch64 C library (the cross toolchain's, on another machine);
    // ioperm, which only x86 C libraries have, is not, even where the x86-64 one is at hand.
    assert!(
        error.contains("ioperm") && !error.contains("printf"),
        "{error}"
    );
}

/// Assembles `source` with the cross compiler's assembler into `dir`.
fn assemble(dir: &Path, name: &str, source: &str) -> Vec<u8> {
    let src = dir.join(format!("{name}.s"));
    let out = dir.join(format!("{name}.o"));
    std::fs::write(&src, source).unwrap();
    let output = Command::new(GCC)
        .arg("-c")
        .arg(&src)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::read(out).unwrap()
}

#[test]
fn a_branch_out_of_reach_goes_through_a_veneer() {
    if !cross_available() {
        return;
    }
    // 129 MiB of code between a function and the branch to it: out of B's ±128 MiB.
    let gap = 0x810_0000;
    let source = format!(
        ".text\n.globl near\n.type near, %function\nnear:\n mov w0, #42\n ret\n\
         .size near, .-near\n.space {gap:#x}\n.globl far\n.type far, %function\nfar:\n b near\n\
         .size far, .-far\n"
    );
    let dir = TempDir::new();
    let object = assemble(&dir.0, "far", &source);
    let module = smf_pack::pack(
        &[Input {
            name: "far.o".into(),
            data: object,
        }],
        &Options::default(),
    )
    .unwrap();
    let image = Image::from_module(&module);
    let far = image.symbols["far"].0;
    let branch = image.word(far);
    assert_eq!(branch & 0xfc00_0000, 0x1400_0000, "b");
    let veneer = far.wrapping_add((sext(u64::from(branch & 0x3ff_ffff), 26) * 4) as u64);
    assert!(veneer > far, "the veneer follows the code");
    // adrp x16, near; add x16, x16, :lo12:near; br x16
    let (adrp, add, br) = (
        image.word(veneer),
        image.word(veneer + 4),
        image.word(veneer + 8),
    );
    assert_eq!(
        (adrp & 0x9f00_001f, add & 0xffc0_03ff, br),
        (0x9000_0010, 0x9100_0210, 0xd61f_0200)
    );
    let target = adrp_page(veneer, adrp) + u64::from((add >> 10) & 0xfff);
    assert_eq!(image.name(target), "near+0x0");
}
