//! Helpers shared by the integration tests: compiling C with the system compiler into a
//! private temporary directory, packing, and looking things up in the parsed module.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use smf_format::{Module, Reloc, RelocKind, Section, Symbol};
use smf_pack::{Input, Options};

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("smf-pack-test-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Compiles `source` with the system compiler (`cc`, or `c++` for C++) and returns the object
/// as an input named `name`. Panics with the compiler's output if it fails.
pub fn compile_with(
    compiler: &str,
    extension: &str,
    name: &str,
    source: &str,
    flags: &[&str],
) -> Input {
    let dir = TempDir::new();
    let src = dir
        .0
        .join(format!("{}.{extension}", name.trim_end_matches(".o")));
    let out = dir.0.join(name);
    std::fs::write(&src, source).expect("write source");
    let output = smf_test_support::HostCommand::new(compiler)
        .arg("-c")
        .args(flags.iter().copied())
        .path(&src)
        .arg("-o")
        .path(&out)
        .output();
    assert!(
        output.status.success(),
        "{compiler} failed on {name}:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Input {
        name: name.to_owned(),
        data: std::fs::read(&out).expect("read object"),
    }
}

/// Compiles C with `-fPIC -O2` plus `flags`.
pub fn compile(name: &str, source: &str, flags: &[&str]) -> Input {
    let mut all = vec!["-fPIC", "-O2"];
    all.extend_from_slice(flags);
    compile_with("cc", "c", name, source, &all)
}

pub fn pack(inputs: &[Input]) -> Vec<u8> {
    pack_with(inputs, &Options::default())
}

pub fn pack_with(inputs: &[Input], options: &Options) -> Vec<u8> {
    match smf_pack::pack(inputs, options) {
        Ok(bytes) => bytes,
        Err(e) => panic!("pack failed: {e}"),
    }
}

/// Packs and returns the error message; panics if packing succeeds.
pub fn pack_error(inputs: &[Input], options: &Options) -> String {
    match smf_pack::pack(inputs, options) {
        Ok(_) => panic!("packing unexpectedly succeeded"),
        Err(e) => e.to_string(),
    }
}

pub fn parse(bytes: &[u8]) -> Module<'_> {
    let module = Module::parse(bytes).unwrap_or_else(|e| panic!("module does not parse: {e}"));
    module.verify_hash().expect("module hash");
    module
}

/// Any symbol (local ones included) with this name.
pub fn symbol<'a>(module: &'a Module<'a>, name: &str) -> Symbol<'a> {
    module
        .symbols()
        .valid()
        .map(|(_, s)| s)
        .find(|s| s.name == name)
        .unwrap_or_else(|| {
            panic!(
                "no symbol {name}; symbols: {:?}",
                module
                    .symbols()
                    .to_vec()
                    .unwrap()
                    .iter()
                    .map(|s| s.name)
                    .collect::<Vec<_>>()
            )
        })
}

pub fn section_of<'a>(module: &'a Module<'a>, symbol: &Symbol<'_>) -> &'a Section<'a> {
    let index = symbol.section.expect("symbol has a section");
    &module.sections()[index as usize]
}

/// The bytes of the image at `offset..offset + len` (zero past a section's file bytes).
pub fn image_bytes(module: &Module<'_>, offset: u64, len: usize) -> Vec<u8> {
    let section = module
        .section_at(offset)
        .unwrap_or_else(|| panic!("no section at {offset:#x}"));
    let start = (offset - section.vaddr) as usize;
    (start..start + len)
        .map(|i| section.data.get(i).copied().unwrap_or(0))
        .collect()
}

pub fn read_u64(module: &Module<'_>, offset: u64) -> u64 {
    u64::from_le_bytes(image_bytes(module, offset, 8).try_into().unwrap())
}

pub fn read_i32(module: &Module<'_>, offset: u64) -> i32 {
    i32::from_le_bytes(image_bytes(module, offset, 4).try_into().unwrap())
}

/// Image offsets that the `call rel32` (e8) instructions inside a function's bytes reach.
pub fn call_targets(module: &Module<'_>, function: &Symbol<'_>) -> Vec<u64> {
    let code = image_bytes(module, function.value, function.size as usize);
    (0..code.len().saturating_sub(4))
        .filter(|&i| code[i] == 0xe8)
        .map(|i| {
            let rel = i32::from_le_bytes(code[i + 1..i + 5].try_into().unwrap());
            (function.value as i64 + i as i64 + 5 + rel as i64) as u64
        })
        .collect()
}

/// The bytes of a section of an ELF object, found through the `object` crate.
pub fn elf_section<'a>(input: &'a Input, name: &str) -> &'a [u8] {
    use object::read::elf::{FileHeader, SectionHeader};
    let header = object::elf::FileHeader64::<object::LittleEndian>::parse(&input.data[..]).unwrap();
    let sections = header
        .sections(object::LittleEndian, &input.data[..])
        .unwrap();
    let (_, section) = sections
        .section_by_name(object::LittleEndian, name.as_bytes())
        .unwrap();
    section.data(object::LittleEndian, &input.data[..]).unwrap()
}

/// File offset and size of a section header of an ELF object, to corrupt it.
pub fn elf_section_header_offset(input: &Input, name: &str) -> usize {
    use object::read::elf::FileHeader;
    let le = object::LittleEndian;
    let header = object::elf::FileHeader64::<object::LittleEndian>::parse(&input.data[..]).unwrap();
    let sections = header.sections(le, &input.data[..]).unwrap();
    let (index, _) = sections.section_by_name(le, name.as_bytes()).unwrap();
    header.e_shoff(le) as usize + index.0 * 64
}

/// The entries of a relocation section of an ELF object: (offset, type, symbol name, addend).
pub fn elf_relocations(input: &Input, section: &str) -> Vec<(u64, u32, String, i64)> {
    use object::read::elf::{FileHeader, Rela, SectionHeader, Sym};
    let le = object::LittleEndian;
    let data = &input.data[..];
    let header = object::elf::FileHeader64::<object::LittleEndian>::parse(data).unwrap();
    let sections = header.sections(le, data).unwrap();
    let symbols = sections.symbols(le, data, object::elf::SHT_SYMTAB).unwrap();
    let (_, rela) = sections.section_by_name(le, section.as_bytes()).unwrap();
    let (entries, _) = rela.rela(le, data).unwrap().unwrap();
    entries
        .iter()
        .map(|r| {
            let symbol = symbols
                .symbol(object::SymbolIndex(r.r_sym(le, false) as usize))
                .unwrap();
            let name =
                String::from_utf8_lossy(symbol.name(le, symbols.strings()).unwrap()).into_owned();
            (r.r_offset(le), r.r_type(le, false).0, name, r.r_addend(le))
        })
        .collect()
}

pub fn read_i64(module: &Module<'_>, offset: u64) -> i64 {
    i64::from_le_bytes(image_bytes(module, offset, 8).try_into().unwrap())
}

/// Every load-time relocation, sorted by offset: the relocation table's entries and the
/// packed relative ones, whose addend is the word at their offset.
pub fn load_relocations(module: &Module<'_>) -> Vec<Reloc> {
    let mut all: Vec<Reloc> = module.relocations().iter().collect();
    all.extend(module.relative_relocations().iter().map(|offset| Reloc {
        offset,
        kind: RelocKind::Relative64,
        import: None,
        addend: read_i64(module, offset),
    }));
    all.sort_by_key(|r| r.offset);
    all
}

/// `clang` if it runs (it is on PATH), for the tests of what clang emits. Otherwise prints a
/// note, once, that those tests are skipped; with `SMF_REQUIRE_CLANG` set (as `.ci/run` does)
/// a missing clang fails the test instead.
pub fn clang() -> Option<&'static str> {
    static FOUND: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let found = *FOUND.get_or_init(|| {
        let found = Command::new("clang")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            // Straight to stderr: libtest captures print! and eprint!, so a note printed with
            // them would only show if the test failed.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "note: clang is not on PATH; the clang tests of smf-pack are skipped"
            );
        }
        found
    });
    assert!(
        found || std::env::var_os("SMF_REQUIRE_CLANG").is_none(),
        "SMF_REQUIRE_CLANG is set but clang is not on PATH"
    );
    found.then_some("clang")
}

/// The `sh_type` of a section of an ELF object.
pub fn elf_section_type(input: &Input, name: &str) -> u32 {
    use object::read::elf::{FileHeader, SectionHeader};
    let le = object::LittleEndian;
    let header = object::elf::FileHeader64::<object::LittleEndian>::parse(&input.data[..]).unwrap();
    let sections = header.sections(le, &input.data[..]).unwrap();
    let (_, section) = sections
        .section_by_name(le, name.as_bytes())
        .unwrap_or_else(|| panic!("{} has no section {name}", input.name));
    section.sh_type(le).0
}

/// The `st_value` of a named symbol of an ELF object (its offset in its section).
pub fn elf_symbol_value(input: &Input, name: &str) -> u64 {
    use object::read::elf::{FileHeader, Sym};
    let le = object::LittleEndian;
    let data = &input.data[..];
    let header = object::elf::FileHeader64::<object::LittleEndian>::parse(data).unwrap();
    let sections = header.sections(le, data).unwrap();
    let symbols = sections.symbols(le, data, object::elf::SHT_SYMTAB).unwrap();
    symbols
        .iter()
        .find(|s| s.name(le, symbols.strings()) == Ok(name.as_bytes()))
        .unwrap_or_else(|| panic!("{} has no symbol {name}", input.name))
        .st_value(le)
}
