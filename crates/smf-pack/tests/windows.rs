//! COFF x86-64 objects for Windows modules: real C and C++ compiled by mingw-w64's gcc and
//! g++ at -O0 and -O2, checked against mingw-w64's own link of the same objects into a DLL.
//!
//! The differential check: the objects are packed into a module and linked by
//! `x86_64-w64-mingw32-gcc -shared`. For every 32-bit PC-relative relocation in every function
//! of the objects, both outputs are decoded at that field and what it reaches is named: a
//! function or variable, an import (through the module's call stub and GOT slot, or the DLL's
//! import thunk and import address table), the pointer a slot or `.refptr` word holds, or the
//! bytes there for anonymous constants. Both must name the same thing, and every other byte of
//! every function must be the same. The function tables are compared entry by entry (length,
//! unwind codes, exception handler), and the constructors' running order against the DLL's
//! `__CTOR_LIST__`, which mingw-w64's runtime runs backwards.
//!
//! Without mingw-w64 the tests print "skipped: x86_64-w64-mingw32-gcc not found" and pass,
//! unless SMF_REQUIRE_CROSS is set (as `.ci/run` does), where they fail.
//!
//! Built for Linux and for Windows, run under Wine (README, "Windows"): mingw-w64's gcc and
//! g++ are Linux programs, started through `smf_test_support::HostCommand` (which under Wine
//! goes through `/bin/sh`, as a Windows program gets no exit status of a Linux one).

mod util;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use object::pe;
use object::read::coff::CoffFile;
use object::read::pe::{ImageNtHeaders as _, PeFile64};
use object::{LittleEndian as LE, Object, ObjectSection, ObjectSymbol};
use smf_format::{Module, Platform, RelocKind, SectionKind};
use smf_pack::{Input, Options};
use smf_test_support::{HostCommand, find_program, local_path};
use util::TempDir;

/// mingw-w64's C compiler.
fn gcc() -> String {
    find_program("x86_64-w64-mingw32-gcc").expect("mingw_available checked it")
}

/// The POSIX-threads build of g++: the C++ fixture starts `std::thread`s, which the win32
/// threads build lacks.
fn gxx() -> String {
    find_program("x86_64-w64-mingw32-g++-posix").expect("mingw_available checked it")
}

fn mingw_available() -> bool {
    let found = find_program("x86_64-w64-mingw32-gcc").is_some()
        && find_program("x86_64-w64-mingw32-g++-posix").is_some();
    if !found {
        if std::env::var_os("SMF_REQUIRE_CROSS").is_some() {
            panic!("x86_64-w64-mingw32-gcc or -g++-posix not found, and SMF_REQUIRE_CROSS is set");
        }
        println!("skipped: x86_64-w64-mingw32-gcc not found");
    }
    found
}

fn run(command: &mut HostCommand) {
    command.check();
}

/// What `compiler` prints for `option` (`-print-libgcc-file-name`, `-print-file-name=…`):
/// a path, as this program's.
fn print_path(compiler: &str, option: &str) -> std::path::PathBuf {
    let output = HostCommand::new(compiler).arg(option).check();
    local_path(String::from_utf8(output.stdout).unwrap().trim())
}

/// Compiles each source into `dir` and returns the objects' paths.
fn compile(
    dir: &Path,
    compiler: &str,
    sources: &[&Path],
    flags: &[&str],
) -> Vec<std::path::PathBuf> {
    sources
        .iter()
        .map(|source| {
            let out = dir.join(source.file_stem().unwrap()).with_extension("o");
            run(HostCommand::new(compiler)
                .arg("-c")
                .args(flags.iter().copied())
                .path(source)
                .arg("-o")
                .path(&out));
            out
        })
        .collect()
}

/// One output seen the same way: the module, or the DLL (addresses as RVAs).
struct Image {
    sections: Vec<(u64, Vec<u8>)>,
    /// Every named symbol's address, and the names at each address.
    symbols: HashMap<String, u64>,
    /// Names several symbols have (local functions of several objects, `.constprop` clones):
    /// `symbols` cannot say which is meant.
    ambiguous: std::collections::HashSet<String>,
    names: HashMap<u64, Vec<String>>,
    /// Import slots: address → imported name.
    imports: HashMap<u64, String>,
    /// Pointer words that the loader (or the PE loader) relocates: address → image offset.
    pointers: HashMap<u64, u64>,
    /// Function table: (begin, end, unwind information).
    functions: Vec<(u64, u64, u64)>,
    /// Constructors in running order.
    constructors: Vec<u64>,
}

impl Image {
    fn bytes(&self, address: u64, len: usize) -> Option<&[u8]> {
        self.sections.iter().find_map(|(start, data)| {
            let offset = usize::try_from(address.checked_sub(*start)?).ok()?;
            data.get(offset..offset.checked_add(len)?)
        })
    }

    fn u32_at(&self, address: u64) -> Option<u32> {
        self.bytes(address, 4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
    }

    /// What an address names, through stubs and slots.
    fn describe(&self, address: u64) -> String {
        self.describe_depth(address, 0)
    }

    fn describe_depth(&self, address: u64, depth: u32) -> String {
        if let Some(name) = self.imports.get(&address) {
            return format!("slot of import {name}");
        }
        if let Some(names) = self.names.get(&address) {
            // Section symbols (`.text`) last: a function's own name is the one to compare.
            let mut names = names.clone();
            names.sort_by_key(|n| (n.starts_with('.'), n.clone()));
            return format!("symbol {}", names[0]);
        }
        if let Some(&target) = self.pointers.get(&address) {
            if depth < 2 {
                return format!("pointer to {}", self.describe_depth(target, depth + 1));
            }
        }
        // A stub or import thunk: `jmp *disp32(%rip)`.
        if let Some([0xff, 0x25, ..]) = self.bytes(address, 6) {
            let disp = self.u32_at(address + 2).unwrap() as i32;
            let slot = (address as i64 + 6 + i64::from(disp)) as u64;
            if let Some(name) = self.imports.get(&slot) {
                return format!("import {name}");
            }
        }
        // Anonymous constants: their bytes, with the words relocated at load (which hold
        // image offsets in one output and addresses in the other) left out.
        match self.bytes(address, 16) {
            Some(bytes) => {
                let shown: Vec<String> = bytes
                    .iter()
                    .enumerate()
                    .map(|(i, b)| {
                        let at = address + i as u64;
                        let relocated = (0..8u64).any(|k| {
                            at.checked_sub(k).is_some_and(|w| {
                                self.pointers.contains_key(&w) || self.imports.contains_key(&w)
                            })
                        });
                        if relocated {
                            "..".to_owned()
                        } else {
                            format!("{b:02x}")
                        }
                    })
                    .collect();
                format!("bytes {}", shown.join(" "))
            }
            None => format!("outside the image at {address:#x}"),
        }
    }

    fn names_at(&self, address: u64) -> Vec<String> {
        self.names.get(&address).cloned().unwrap_or_default()
    }
}

/// A section symbol's name (`.text`, `.rdata`), which the DLL keeps and the module does
/// not; `.refptr.NAME` words are named in both.
fn is_section_name(name: &str) -> bool {
    name.starts_with('.') && !name.starts_with(".refptr.")
}

fn module_image(bytes: &[u8]) -> Image {
    let module = Module::parse(bytes).unwrap();
    assert_eq!(module.header().platform, Platform::Windows);
    let mut image = Image {
        sections: Vec::new(),
        symbols: HashMap::new(),
        ambiguous: Default::default(),
        names: HashMap::new(),
        imports: HashMap::new(),
        pointers: HashMap::new(),
        functions: Vec::new(),
        constructors: module.init_array().to_vec(),
    };
    for section in module.loaded_sections() {
        let mut data = section.data.to_vec();
        data.resize(section.mem_size as usize, 0);
        image.sections.push((section.vaddr, data));
        if section.kind == SectionKind::Pdata {
            for entry in section.data.chunks_exact(12) {
                let word =
                    |i: usize| u64::from(u32::from_le_bytes(entry[i..i + 4].try_into().unwrap()));
                image.functions.push((word(0), word(4), word(8)));
            }
        }
    }
    for symbol in module.symbols().into_iter().map(Result::unwrap) {
        if symbol.section.is_some() {
            if image
                .symbols
                .insert(symbol.name.to_owned(), symbol.value)
                .is_some()
            {
                image.ambiguous.insert(symbol.name.to_owned());
            }
            image
                .names
                .entry(symbol.value)
                .or_default()
                .push(symbol.name.to_owned());
        }
    }
    let imports = module.imports();
    for reloc in module.relocations() {
        match reloc.kind {
            RelocKind::Abs64 => {
                let name = imports[reloc.import.unwrap() as usize].name;
                if reloc.addend == 0 {
                    image.imports.insert(reloc.offset, name.to_owned());
                }
            }
            RelocKind::Relative64 => {
                image.pointers.insert(reloc.offset, reloc.addend as u64);
            }
            _ => {}
        }
    }
    for offset in module.relative_relocations() {
        let word = image.bytes(offset, 8).unwrap();
        let value = u64::from_le_bytes(word.try_into().unwrap());
        image.pointers.insert(offset, value);
    }
    image
}

fn dll_image(bytes: &[u8]) -> Image {
    let file = PeFile64::parse(bytes).unwrap();
    let base = file.relative_address_base();
    let mut image = Image {
        sections: Vec::new(),
        symbols: HashMap::new(),
        ambiguous: Default::default(),
        names: HashMap::new(),
        imports: HashMap::new(),
        pointers: HashMap::new(),
        functions: Vec::new(),
        constructors: Vec::new(),
    };
    for section in file.sections() {
        let mut data = section.data().unwrap().to_vec();
        data.resize(section.size() as usize, 0);
        image.sections.push((section.address() - base, data));
    }
    for symbol in file.symbols() {
        let (Ok(name), Some(_)) = (symbol.name(), symbol.section_index()) else {
            continue;
        };
        let address = symbol.address() - base;
        if is_section_name(name) {
            continue;
        }
        if image.symbols.insert(name.to_owned(), address).is_some() {
            image.ambiguous.insert(name.to_owned());
        }
        image
            .names
            .entry(address)
            .or_default()
            .push(name.to_owned());
    }
    let table = file.import_table().unwrap().unwrap();
    let mut descriptors = table.descriptors().unwrap();
    while let Some(descriptor) = descriptors.next().unwrap() {
        let lookup = descriptor.original_first_thunk.get(LE);
        let mut thunks = table.thunks(lookup).unwrap();
        let mut slot = u64::from(descriptor.first_thunk.get(LE));
        while let Some(thunk) = thunks.next::<pe::ImageNtHeaders64>().unwrap() {
            if let Ok(object::read::pe::Import::Name(_, name)) =
                table.import::<pe::ImageNtHeaders64>(thunk)
            {
                image
                    .imports
                    .insert(slot, String::from_utf8_lossy(name).into_owned());
            }
            slot += 8;
        }
    }
    let image_base = file.nt_headers().optional_header().image_base.get(LE);
    for block in file
        .data_directories()
        .relocation_blocks(bytes, &file.section_table())
        .unwrap()
        .into_iter()
        .flatten()
    {
        for reloc in block.unwrap() {
            if reloc.typ == pe::IMAGE_REL_BASED_DIR64 {
                let rva = u64::from(reloc.virtual_address);
                if let Some(word) = image.bytes(rva, 8) {
                    let value = u64::from_le_bytes(word.try_into().unwrap());
                    image.pointers.insert(rva, value.wrapping_sub(image_base));
                }
            }
        }
    }
    if let Some(directory) = file.data_directory(pe::IMAGE_DIRECTORY_ENTRY_EXCEPTION) {
        let start = u64::from(directory.virtual_address.get(LE));
        for i in 0..u64::from(directory.size.get(LE)) / 12 {
            let at = start + 12 * i;
            let word = |o| u64::from(image.u32_at(at + o).unwrap());
            image.functions.push((word(0), word(4), word(8)));
        }
    }
    // mingw-w64's `__CTOR_LIST__`: -1, the entries, 0; run from the last entry to the first.
    if let Some(&list) = image.symbols.get("__CTOR_LIST__") {
        let mut at = list + 8;
        let mut entries = Vec::new();
        while let Some(word) = image.bytes(at, 8) {
            let value = u64::from_le_bytes(word.try_into().unwrap());
            if value == 0 {
                break;
            }
            entries.push(value - image_base);
            at += 8;
        }
        entries.reverse();
        image.constructors = entries;
    }
    image
}

/// A function of an object: its section, start, end (offsets in the section) and name.
struct Function {
    name: String,
    section: usize,
    start: u64,
    end: u64,
}

/// The named functions of a COFF object, each up to the next named symbol of its section.
fn functions(file: &CoffFile<'_>) -> Vec<Function> {
    let mut by_section: BTreeMap<usize, Vec<(u64, String, bool)>> = BTreeMap::new();
    for symbol in file.symbols() {
        let Some(section) = symbol.section_index() else {
            continue;
        };
        let name = symbol.name().unwrap().to_owned();
        if symbol.kind() == object::SymbolKind::Section || name.is_empty() || name.starts_with('.')
        {
            continue;
        }
        let function = symbol.kind() == object::SymbolKind::Text;
        by_section
            .entry(section.0)
            .or_default()
            .push((symbol.address(), name, function));
    }
    let mut out = Vec::new();
    for (section, mut symbols) in by_section {
        symbols.sort();
        let size = file
            .section_by_index(object::SectionIndex(section))
            .unwrap()
            .size();
        for (i, (start, name, function)) in symbols.iter().enumerate() {
            if !function {
                continue;
            }
            let end = symbols.get(i + 1).map_or(size, |next| next.0);
            out.push(Function {
                name: name.clone(),
                section,
                start: *start,
                end,
            });
        }
    }
    out
}

/// Packs `objects` and links them into a DLL, and checks every function and the unwind and
/// constructor tables of the module against the DLL (see the top of this file). Returns the
/// number of relocated fields compared.
fn differential(
    dir: &Path,
    compiler: &str,
    objects: &[std::path::PathBuf],
    extra: &[&str],
) -> usize {
    let mut inputs: Vec<Input> = objects
        .iter()
        .map(|path| Input {
            name: path.display().to_string(),
            data: std::fs::read(path).unwrap(),
        })
        .collect();
    let libgcc = print_path(compiler, "-print-libgcc-file-name");
    inputs.push(Input {
        name: libgcc.display().to_string(),
        data: std::fs::read(&libgcc).unwrap(),
    });
    let module_bytes = smf_pack::pack(&inputs, &Options::default()).unwrap();
    let dll = dir.join("reference.dll");
    run(HostCommand::new(compiler)
        .arg("-shared")
        .args(extra.iter().copied())
        .arg("-o")
        .path(&dll)
        .paths(objects));
    let dll_bytes = std::fs::read(&dll).unwrap();
    let module = module_image(&module_bytes);
    let reference = dll_image(&dll_bytes);

    let mut compared = 0;
    let mut described: Vec<String> = Vec::new();
    let mut anonymous: HashMap<(std::path::PathBuf, usize), (u64, u64)> = HashMap::new();
    for path in objects {
        let data = std::fs::read(path).unwrap();
        let file = CoffFile::<&[u8]>::parse(&*data).unwrap();
        for function in functions(&file) {
            let (Some(&m), Some(&d)) = (
                module.symbols.get(&function.name),
                reference.symbols.get(&function.name),
            ) else {
                // A COMDAT copy another object provides, or a function the module drops.
                continue;
            };
            if module.ambiguous.contains(&function.name)
                || reference.ambiguous.contains(&function.name)
            {
                continue;
            }
            if module.names_at(m) != vec![function.name.clone()]
                && !module.names_at(m).contains(&function.name)
            {
                continue;
            }
            let section = file
                .section_by_index(object::SectionIndex(function.section))
                .unwrap();
            let len = (function.end - function.start) as usize;
            let (Some(mb), Some(db)) = (module.bytes(m, len), reference.bytes(d, len)) else {
                panic!(
                    "{}: function {} is not in both outputs",
                    path.display(),
                    function.name
                );
            };
            let mut covered = vec![false; len];
            for (offset, reloc) in section.relocations() {
                if offset < function.start || offset >= function.end {
                    continue;
                }
                let object::RelocationFlags::Coff { typ } = reloc.flags() else {
                    unreachable!()
                };
                let n = match typ {
                    pe::IMAGE_REL_AMD64_REL32 => 0,
                    pe::IMAGE_REL_AMD64_REL32_1 => 1,
                    pe::IMAGE_REL_AMD64_REL32_2 => 2,
                    pe::IMAGE_REL_AMD64_REL32_3 => 3,
                    pe::IMAGE_REL_AMD64_REL32_4 => 4,
                    pe::IMAGE_REL_AMD64_REL32_5 => 5,
                    other => panic!(
                        "{}: {} has relocation type {}",
                        path.display(),
                        function.name,
                        other.0
                    ),
                };
                let at = offset - function.start;
                covered[at as usize..at as usize + 4].fill(true);
                let target = |image: &Image, start: u64| {
                    let place = start + at;
                    let disp = image.u32_at(place).unwrap() as i32;
                    (place as i64 + 4 + n + i64::from(disp)) as u64
                };
                let (tm, td) = (target(&module, m), target(&reference, d));
                // A reference to an anonymous place (a section symbol plus an offset: string
                // literals, jump tables, `.xdata`): where the object's section landed in each
                // output, which every reference to it must agree on; its bytes are compared
                // once all references are checked.
                let object::RelocationTarget::Symbol(index) = reloc.target() else {
                    panic!("{}: relocation without a symbol", function.name)
                };
                let symbol = file.symbol_by_index(index).unwrap();
                // (A COMDAT function is compared where the outputs kept it, which may be
                // another object's copy, whose anonymous data is that object's.)
                let comdat = matches!(
                    section.flags(),
                    object::SectionFlags::Coff { characteristics }
                        if characteristics.contains(pe::IMAGE_SCN_LNK_COMDAT)
                );
                if symbol.kind() == object::SymbolKind::Section && comdat {
                    compared += 1;
                    continue;
                }
                if symbol.kind() == object::SymbolKind::Section {
                    let field = section.data().unwrap();
                    let implicit = i32::from_le_bytes(
                        field[offset as usize..offset as usize + 4]
                            .try_into()
                            .unwrap(),
                    );
                    let key = (path.clone(), symbol.section_index().unwrap().0);
                    let bases = (
                        tm.wrapping_sub(implicit as i64 as u64),
                        td.wrapping_sub(implicit as i64 as u64),
                    );
                    let first = *anonymous.entry(key).or_insert(bases);
                    assert_eq!(
                        first,
                        bases,
                        "{}: {}+{at:#x}: references to one section ({} implicit {implicit:#x}) land inconsistently",
                        path.display(),
                        function.name,
                        symbol.name().unwrap_or("?")
                    );
                    compared += 1;
                    continue;
                }
                let (dm, dd) = (module.describe(tm), reference.describe(td));
                assert!(
                    equivalent(&dm, &reference, td),
                    "{}: {}+{at:#x} (REL32_{n}): the module reaches {dm}, mingw's DLL {dd}",
                    path.display(),
                    function.name
                );
                described.push(dm);
                compared += 1;
            }
            for i in 0..len {
                assert!(
                    covered[i] || mb[i] == db[i],
                    "{}: {}+{i:#x}: byte {:#04x} in the module, {:#04x} in the DLL",
                    path.display(),
                    function.name,
                    mb[i],
                    db[i]
                );
            }
            // The function table: same length, same unwind codes, same handler.
            let entry = |image: &Image, address: u64| {
                image.functions.iter().find(|f| f.0 == address).copied()
            };
            match (entry(&module, m), entry(&reference, d)) {
                (None, None) => {}
                (Some((mb, me, mu)), Some((db, de, du))) => {
                    assert_eq!(me - mb, de - db, "{}: function table length", function.name);
                    let header = |image: &Image, at: u64| image.bytes(at, 4).unwrap().to_vec();
                    let (hm, hd) = (header(&module, mu), header(&reference, du));
                    assert_eq!(hm, hd, "{}: unwind information header", function.name);
                    let codes = (u64::from(hm[2]) + 1) & !1;
                    assert_eq!(
                        module.bytes(mu + 4, codes as usize * 2),
                        reference.bytes(du + 4, codes as usize * 2),
                        "{}: unwind codes",
                        function.name
                    );
                    // UNW_FLAG_EHANDLER | UNW_FLAG_UHANDLER: the handler's RVA follows.
                    if hm[0] >> 3 & 3 != 0 && hm[0] >> 3 & 4 == 0 {
                        let at = 4 + codes * 2;
                        let hm = u64::from(module.u32_at(mu + at).unwrap());
                        let hd = u64::from(reference.u32_at(du + at).unwrap());
                        let handler = module.describe(hm);
                        assert!(
                            equivalent(&handler, &reference, hd),
                            "{}: exception handler {handler} in the module, {} in the DLL",
                            function.name,
                            reference.describe(hd)
                        );
                        compared += 1;
                    }
                    compared += 3;
                }
                (m, d) => panic!(
                    "{}: function table entry {m:?} in the module, {d:?} in the DLL",
                    function.name
                ),
            }
        }
    }
    // The anonymous sections' bytes, apart from fields their own relocations write (which
    // differ between layouts) and words relocated at load.
    for ((path, index), (bm, bd)) in &anonymous {
        let data = std::fs::read(path).unwrap();
        let file = CoffFile::<&[u8]>::parse(&*data).unwrap();
        let section = file.section_by_index(object::SectionIndex(*index)).unwrap();
        let contents = section.data().unwrap();
        let mut covered = vec![false; contents.len()];
        for (offset, reloc) in section.relocations() {
            let width = if reloc.size() == 64 { 8 } else { 4 };
            let end = (offset as usize + width).min(covered.len());
            covered[offset as usize..end].fill(true);
        }
        let (Some(mb), Some(db)) = (
            module.bytes(*bm, contents.len()),
            reference.bytes(*bd, contents.len()),
        ) else {
            panic!("{}: section {index} is not in both outputs", path.display());
        };
        for i in 0..contents.len() {
            assert!(
                covered[i] || (mb[i] == contents[i] && db[i] == contents[i]),
                "{}: section {}+{i:#x}: {:#04x} in the object, {:#04x} in the module, {:#04x} in the DLL",
                path.display(),
                section.name().unwrap(),
                contents[i],
                mb[i],
                db[i]
            );
        }
    }
    // Constructors, in running order: the module's init_array against the DLL's list.
    let names = |image: &Image, list: &[u64]| -> Vec<String> {
        list.iter().map(|&a| image.describe(a)).collect()
    };
    // The DLL's list also holds libgcc's `register_frame_ctor` (crtbegin.o), which is not
    // part of the objects.
    let ours = |name: &String| {
        name.strip_prefix("symbol ")
            .is_some_and(|n| module.symbols.contains_key(n))
    };
    let expected: Vec<String> = names(&reference, &reference.constructors)
        .into_iter()
        .filter(ours)
        .collect();
    assert_eq!(
        names(&module, &module.constructors),
        expected,
        "constructors in running order"
    );
    assert!(
        described.iter().any(|d| d.starts_with("import ")),
        "no call to an import was compared"
    );
    assert!(
        described.iter().any(|d| d.starts_with("slot of import ")),
        "no __imp_ slot was compared"
    );
    compared
}

/// Whether the module and the DLL reach the same thing. The DLL links parts of mingw-w64's C
/// runtime statically (`__mingw_vfprintf`, `__acrt_iob_func` and the `__imp_` pointers to
/// them, `strtoll` as an alias of `strtoimax`), which the module imports by the same names: a
/// direct call to such a function in the DLL is a call through the import's stub in the
/// module, and a pointer to it the import's slot.
fn equivalent(module: &str, dll: &Image, target: u64) -> bool {
    if module == dll.describe(target) {
        return true;
    }
    if let Some(name) = module.strip_prefix("import ") {
        return dll.names_at(target).iter().any(|n| n == name);
    }
    if let Some(name) = module.strip_prefix("slot of import ") {
        return dll
            .pointers
            .get(&target)
            .is_some_and(|&p| dll.names_at(p).iter().any(|n| n == name));
    }
    false
}

fn program(name: &str) -> Vec<std::path::PathBuf> {
    let dir = local_path(env!("CARGO_MANIFEST_DIR"))
        .join("../smf/tests/programs")
        .join(name);
    let mut sources: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("c" | "cpp")))
        .collect();
    sources.sort();
    sources
}

#[test]
fn interp_c_matches_mingw_ld() {
    if !mingw_available() {
        return;
    }
    for level in ["-O0", "-O2"] {
        let dir = TempDir::new();
        let sources = program("interp");
        let sources: Vec<&Path> = sources.iter().map(|p| p.as_path()).collect();
        let objects = compile(&dir.0, &gcc(), &sources, &[level]);
        let compared = differential(&dir.0, &gcc(), &objects, &[]);
        assert!(compared > 1000, "{level}: only {compared} fields compared");
    }
}

/// A C++ program for Windows: exceptions thrown across functions and caught by type, static
/// constructors (with a priority) and destructors, virtual functions, templates, a table of
/// function pointers, `std::string` and `std::vector` from libstdc++.
const CXX_PROGRAM: &str = r#"
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>
#include <memory>

struct Shape { virtual ~Shape() {} virtual double area() const = 0; virtual const char *name() const = 0; };
struct Square : Shape { double s; explicit Square(double s) : s(s) {} double area() const override { return s * s; } const char *name() const override { return "square"; } };
struct Rect : Shape { double w, h; Rect(double w, double h) : w(w), h(h) {} double area() const override { return w * h; } const char *name() const override { return "rect"; } };

struct Logger {
    std::vector<std::string> lines;
    Logger() { lines.push_back("logger constructed"); }
    ~Logger() { std::printf("logger destroyed after %zu lines\n", lines.size()); }
    void log(const std::string &s) { lines.push_back(s); }
};
static Logger logger;
static int early_value;
__attribute__((constructor(101))) static void early() { early_value = 7; }
__attribute__((constructor)) static void late() { logger.log("late constructor ran"); }
__attribute__((destructor)) static void goodbye() { std::puts("destructor function ran"); }

struct ParseError : std::runtime_error { int where; ParseError(const std::string &m, int w) : std::runtime_error(m), where(w) {} };

template <typename T> T checked_div(T a, T b) {
    if (b == T(0)) throw std::domain_error("division by zero");
    return a / b;
}

int parse_digit(char c, int at) {
    if (c < '0' || c > '9') throw ParseError(std::string("not a digit: ") + c, at);
    return c - '0';
}

long parse(const char *s) {
    long v = 0;
    for (int i = 0; s[i]; i++) v = v * 10 + parse_digit(s[i], i);
    return v;
}

static long op_add(long a, long b) { return a + b; }
static long op_sub(long a, long b) { return a - b; }
static long op_mul(long a, long b) { return a * b; }
static long op_div(long a, long b) { return checked_div(a, b); }
static long (*const ops[])(long, long) = { op_add, op_sub, op_mul, op_div };
static const char *const op_names[] = { "add", "sub", "mul", "div" };

int main() {
    std::printf("early %d, %s\n", early_value, logger.lines[0].c_str());
    std::vector<std::unique_ptr<Shape>> shapes;
    shapes.emplace_back(new Square(3));
    shapes.emplace_back(new Rect(2, 5.5));
    double total = 0;
    for (auto &s : shapes) { std::printf("%s %.2f\n", s->name(), s->area()); total += s->area(); }
    const char *inputs[] = { "1234", "12x4", "77" };
    int status = 0;
    for (const char *in : inputs) {
        try { std::printf("parsed %ld\n", parse(in)); }
        catch (const ParseError &e) { std::printf("error at %d: %s\n", e.where, e.what()); status += e.where; }
    }
    for (unsigned i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        try { std::printf("%s -> %ld\n", op_names[i], ops[i](42, i == 3 ? 0 : 6)); }
        catch (const std::exception &e) { std::printf("%s failed: %s\n", op_names[i], e.what()); status += 10; }
    }
    logger.log("main done");
    return status + (int)total;
}
"#;

#[test]
fn cxx_with_exceptions_and_constructors_matches_mingw_ld() {
    if !mingw_available() {
        return;
    }
    for level in ["-O0", "-O2"] {
        let dir = TempDir::new();
        let source = dir.0.join("shapes.cpp");
        std::fs::write(&source, CXX_PROGRAM).unwrap();
        let objects = compile(&dir.0, &gxx(), &[&source], &[level, "-std=gnu++17"]);
        let compared = differential(&dir.0, &gxx(), &objects, &[]);
        assert!(compared > 100, "{level}: only {compared} fields compared");
    }
}

/// Compiles C (or assembles `.s`) with mingw-w64 into `dir`, returning the object as an input.
fn mingw_object(dir: &Path, name: &str, source: &str) -> Input {
    let src = dir.join(name);
    std::fs::write(&src, source).unwrap();
    let out = dir.join(format!("{name}.o"));
    run(HostCommand::new(&gcc())
        .args(["-O2", "-c"])
        .path(&src)
        .arg("-o")
        .path(&out));
    Input {
        name: name.to_owned(),
        data: std::fs::read(out).unwrap(),
    }
}

fn pack_error(inputs: &[Input]) -> String {
    smf_pack::pack(inputs, &Options::default())
        .unwrap_err()
        .to_string()
}

#[test]
fn dllimport_slots_are_imports_named_without_the_prefix() {
    if !mingw_available() {
        return;
    }
    let dir = TempDir::new();
    let object = mingw_object(
        &dir.0,
        "imp.c",
        "__declspec(dllimport) int shared_counter;\n\
         __declspec(dllimport) int shared_add(int, int);\n\
         int plain_call(int);\n\
         int use(void) { return shared_add(shared_counter, plain_call(2)); }\n",
    );
    let bytes = smf_pack::pack(&[object], &Options::default()).unwrap();
    let module = Module::parse(&bytes).unwrap();
    let mut names: Vec<&str> = module.imports().iter().map(|i| i.name).collect();
    names.sort();
    assert_eq!(names, ["plain_call", "shared_add", "shared_counter"]);
    let image = module_image(&bytes);
    // `call *__imp_shared_add(%rip)` and the load of `__imp_shared_counter` read the slots
    // the loader fills; `call plain_call` goes through a stub that jumps through one.
    let slots: Vec<&String> = image.imports.values().collect();
    assert_eq!(slots.len(), 3, "{slots:?}");
    let mut report = String::new();
    smf_format::report::write_report(&module, &mut report).unwrap();
    assert!(report.contains("Platform:      windows"), "{report}");
    assert!(report.contains("Function table (1 entries"), "{report}");
    assert!(report.contains("<use>"), "{report}");
    let json = smf_format::report::json_report(&module, smf_format::report::Parts::ALL);
    let table = json["function_table"].as_array().unwrap();
    assert_eq!(table.len(), 1);
    assert_eq!(table[0]["function"], "use");
    assert_eq!(table[0]["begin"], image.symbols["use"]);
}

/// The directory of mingw-w64's own libraries (`libmsvcrt.a`, `libmingwex.a`), as gcc
/// searches it.
fn mingw_lib_dir() -> std::path::PathBuf {
    let path = print_path(&gcc(), "-print-file-name=libmsvcrt.a");
    assert!(path.is_absolute(), "{} does not find libmsvcrt.a", gcc());
    path.parent().unwrap().to_owned()
}

#[test]
fn import_library_members_are_not_taken_and_their_functions_stay_imports() {
    if !mingw_available() {
        return;
    }
    let dir = TempDir::new();
    // `fopen` and `_errno` are in libmsvcrt.a as dlltool import members (`.idata$*`
    // sections, a `jmp *__imp_fopen` thunk); `__acrt_iob_func`, which `stdout` expands to, is
    // a real function of its static part, built from mingw-w64's sources. `fdopen`'s member
    // imports msvcrt.dll's `_fdopen`.
    let object = mingw_object(
        &dir.0,
        "io.c",
        "#include <stdio.h>\n#include <errno.h>\n\
         int open_it(const char *p) { FILE *f = fopen(p, \"r\"); if (!f) return errno; fputs(p, stdout); return fclose(f); }\n\
         FILE *reopen(int fd) { return fdopen(fd, \"r\"); }\n",
    );
    let msvcrt = Input {
        name: "libmsvcrt.a".into(),
        data: std::fs::read(mingw_lib_dir().join("libmsvcrt.a")).unwrap(),
    };
    let bytes = smf_pack::pack(&[object, msvcrt], &Options::default()).unwrap();
    let module = Module::parse(&bytes).unwrap();
    let mut names: Vec<&str> = module.imports().iter().map(|i| i.name).collect();
    names.sort();
    // `__acrt_iob_func` was taken from the archive and calls msvcrt.dll's `__iob_func`.
    assert_eq!(
        names,
        [
            "__iob_func",
            "_errno",
            "_fdopen",
            "fclose",
            "fopen",
            "fputs"
        ]
    );
    let image = module_image(&bytes);
    assert!(image.symbols.contains_key("__acrt_iob_func"));
    // `fdopen` jumps through `_fdopen`'s slot.
    let fdopen = image.symbols["fdopen"];
    assert_eq!(image.bytes(fdopen, 2), Some(&[0xff, 0x25][..]));
    let slot = (fdopen as i64 + 6 + i64::from(image.u32_at(fdopen + 2).unwrap() as i32)) as u64;
    assert_eq!(image.imports[&slot], "_fdopen");
    assert!(!image.symbols.contains_key("__imp_fopen"));
    for section in module.loaded_sections() {
        assert!(!section.name.starts_with(".idata"), "{}", section.name);
    }
}

#[test]
fn libgcc_s_main_is_not_taken_the_module_s_own_does_nothing() {
    if !mingw_available() {
        return;
    }
    let dir = TempDir::new();
    // mingw-w64's `main` calls `__main` first; libgcc.a's would run `__CTOR_LIST__`, which
    // only GNU ld's script defines, and register `__DTOR_LIST__` with `atexit`.
    let object = mingw_object(&dir.0, "main.c", "int main(void) { return 3; }\n");
    let libgcc = Input {
        name: "libgcc.a".into(),
        data: std::fs::read(print_path(&gcc(), "-print-libgcc-file-name")).unwrap(),
    };
    let bytes = smf_pack::pack(&[object, libgcc], &Options::default()).unwrap();
    let module = Module::parse(&bytes).unwrap();
    assert!(module.imports().is_empty(), "{:?}", module.imports());
    let image = module_image(&bytes);
    assert_eq!(image.bytes(image.symbols["__main"], 1), Some(&[0xc3][..]));
    assert!(!image.symbols.contains_key("__do_global_ctors"));
}

/// Compiles C++ with mingw-w64's g++ at -O2 into `dir`, returning the object as an input.
fn mingw_cxx_object(dir: &Path, name: &str, source: &str) -> Input {
    let src = dir.join(name);
    std::fs::write(&src, source).unwrap();
    let out = dir.join(format!("{name}.o"));
    run(HostCommand::new(&gxx())
        .args(["-O2", "-c"])
        .path(&src)
        .arg("-o")
        .path(&out));
    Input {
        name: name.to_owned(),
        data: std::fs::read(out).unwrap(),
    }
}

#[test]
fn weak_reference_defaults_of_the_same_name_are_not_duplicates() {
    if !mingw_available() {
        return;
    }
    let dir = TempDir::new();
    // Both objects name the absolute default of their weak reference (value 0)
    // `.weak.maybe_missing._Z12first_inlinev`, after their first global symbol.
    let source = |n: &str| {
        format!(
            "inline int first_inline() {{ return 1; }}\n\
             extern \"C\" __attribute__((weak)) void maybe_missing();\n\
             int use_{n}() {{ if (maybe_missing) maybe_missing(); return first_inline(); }}\n"
        )
    };
    let a = mingw_cxx_object(&dir.0, "a.cpp", &source("a"));
    let b = mingw_cxx_object(&dir.0, "b.cpp", &source("b"));
    let bytes = smf_pack::pack(&[a, b], &Options::default()).unwrap();
    let module = Module::parse(&bytes).unwrap();
    let import = module
        .imports()
        .iter()
        .find(|i| i.name == "maybe_missing")
        .unwrap();
    assert_eq!(import.binding, smf_format::Binding::Weak);
}

#[test]
fn unwind_sections_without_a_comdat_key_go_with_their_function() {
    if !mingw_available() {
        return;
    }
    let dir = TempDir::new();
    // `what()` is an inline function here and in libstdc++.a's guard.o, which the static
    // local's guard takes; guard.o's `.pdata$` of it is a COMDAT section without a section
    // symbol, so without a key of its own: it must be dropped with guard.o's `.text$` copy.
    let object = mingw_cxx_object(
        &dir.0,
        "lock.cpp",
        "#include <ext/concurrence.h>\n\
         const char *lock_error_text() {\n\
           try { throw __gnu_cxx::__concurrence_lock_error(); }\n\
           catch (const __gnu_cxx::__concurrence_lock_error &e) { return e.what(); }\n\
         }\n\
         int counter() { static int calls = lock_error_text()[0]; return ++calls; }\n",
    );
    let libstdcxx = Input {
        name: "libstdc++.a".into(),
        data: std::fs::read(print_path(&gxx(), "-print-file-name=libstdc++.a")).unwrap(),
    };
    let bytes = smf_pack::pack(&[object, libstdcxx], &Options::default()).unwrap();
    let image = module_image(&bytes);
    let what = image.symbols["_ZNK9__gnu_cxx24__concurrence_lock_error4whatEv"];
    let entries = image.functions.iter().filter(|f| f.0 == what).count();
    assert_eq!(entries, 1, "function table entries of what()");
    assert!(image.symbols.contains_key("__cxa_guard_acquire"));
}

#[test]
fn constructors_run_in_windows_order() {
    if !mingw_available() {
        return;
    }
    let dir = TempDir::new();
    let object = mingw_object(
        &dir.0,
        "ctors.c",
        "volatile int runs;\n\
         void first(void) { runs++; }\nvoid second(void) { runs++; }\nvoid third(void) { runs++; }\n\
         void fourth(void) { runs++; }\nvoid last_out(void) { runs++; }\nvoid first_out(void) { runs++; }\n\
         int zeroth(void) { return runs++; }\n\
         __attribute__((section(\".CRT$XCU\"), used)) static void (*u)(void) = second;\n\
         __attribute__((section(\".CRT$XIU\"), used)) static int (*i)(void) = zeroth;\n\
         __attribute__((section(\".CRT$XCA\"), used)) static void (*a)(void) = first;\n\
         __attribute__((section(\".CRT$XCZ\"), used)) static void (*z)(void) = 0;\n\
         __attribute__((constructor)) static void ctor_default(void) { fourth(); }\n\
         __attribute__((constructor(200))) static void ctor_200(void) { third(); }\n\
         __attribute__((destructor)) static void dtor_default(void) { first_out(); }\n\
         __attribute__((section(\".CRT$XTZ\"), used)) static void (*t)(void) = last_out;\n",
    );
    let bytes = smf_pack::pack(&[object], &Options::default()).unwrap();
    let image = module_image(&bytes);
    let module = Module::parse(&bytes).unwrap();
    let names = |list: &[u64]| -> Vec<String> { list.iter().map(|&a| image.describe(a)).collect() };
    // `.CRT$XI*`, then `.CRT$XC*` by name (the null `.CRT$XCZ` entry skipped), then `.ctors`
    // backwards: the priority-200 constructor's `.ctors.65335` lies after plain `.ctors`, so
    // runs first.
    assert_eq!(
        names(module.init_array()),
        [
            "symbol zeroth",
            "symbol first",
            "symbol second",
            "symbol ctor_200",
            "symbol ctor_default"
        ]
    );
    // A mingw-w64 program never runs its own `.CRT$XT*` terminators.
    assert_eq!(names(module.fini_array()), ["symbol dtor_default"]);
}

#[test]
fn thread_local_storage_of_pe_is_refused_and_emutls_is_an_import() {
    if !mingw_available() {
        return;
    }
    let dir = TempDir::new();
    let emutls = mingw_object(
        &dir.0,
        "emutls.c",
        "__thread int counter = 5;\nint bump(void) { return counter++; }\n",
    );
    let bytes = smf_pack::pack(&[emutls], &Options::default()).unwrap();
    let module = Module::parse(&bytes).unwrap();
    assert!(
        module
            .imports()
            .iter()
            .any(|i| i.name == "__emutls_get_address")
    );
    let tls_index = mingw_object(
        &dir.0,
        "index.c",
        "extern int _tls_index;\nint get(void) { return _tls_index; }\n",
    );
    let error = pack_error(&[tls_index]);
    assert!(
        error.contains("refers to _tls_index: PE thread-local storage"),
        "{error}"
    );
    let tls = mingw_object(&dir.0, "tls.s", ".section .tls$,\"w\"\n.long 1\n");
    let error = pack_error(&[tls]);
    assert!(
        error.contains("tls.s: section .tls$: PE thread-local storage"),
        "{error}"
    );
}

#[test]
fn tls_callbacks_become_the_tls_callbacks_table() {
    if !mingw_available() {
        return;
    }
    let dir = TempDir::new();
    // As winpthreads and mingw-w64's tlssup.c place them: pointers in `.CRT$XL*`, run in the
    // order of the section names; `.CRT$XLA`/`.CRT$XLZ`-style null markers are skipped.
    let object = mingw_object(
        &dir.0,
        "callbacks.c",
        "#include <windows.h>\n\
         volatile DWORD seen;\n\
         void NTAPI later(PVOID h, DWORD r, PVOID x) { seen = r; }\n\
         void NTAPI sooner(PVOID h, DWORD r, PVOID x) { seen = r + 1; }\n\
         __attribute__((section(\".CRT$XLF\"), used)) static PIMAGE_TLS_CALLBACK f = later;\n\
         __attribute__((section(\".CRT$XLA\"), used)) static PIMAGE_TLS_CALLBACK a = 0;\n\
         __attribute__((section(\".CRT$XLB\"), used)) static PIMAGE_TLS_CALLBACK b = sooner;\n",
    );
    let bytes = smf_pack::pack(&[object], &Options::default()).unwrap();
    let module = Module::parse(&bytes).unwrap();
    assert_eq!(
        tls_callback_names(&bytes),
        ["symbol sooner", "symbol later"]
    );
    assert!(module.init_array().is_empty() && module.fini_array().is_empty());
    let mut report = String::new();
    smf_format::report::write_report(&module, &mut report).unwrap();
    assert!(
        report.contains("TLS callbacks (2, in run order):"),
        "{report}"
    );
    let json = smf_format::report::json_report(&module, smf_format::report::Parts::ALL);
    assert_eq!(json["tls_callbacks"][0]["symbol"], "sooner");
}

#[test]
fn comdat_selections_keep_one_copy_or_refuse_differing_ones() {
    if !mingw_available() {
        return;
    }
    let dir = TempDir::new();
    let comdat = |name: &str, kind: &str, words: &str| {
        mingw_object(
            &dir.0,
            name,
            &format!(
                ".section .rdata$shared,\"dr\"\n.linkonce {kind}\n.globl shared\nshared:\n{words}\n\
                 .text\n.globl get_{n}\nget_{n}:\nmovl shared(%rip), %eax\nret\n",
                n = name.trim_end_matches(".s")
            ),
        )
    };
    // `discard` (IMAGE_COMDAT_SELECT_ANY): the first copy is kept, both references reach it.
    let inputs = [
        comdat("a.s", "discard", ".long 1"),
        comdat("b.s", "discard", ".long 2"),
    ];
    let bytes = smf_pack::pack(&inputs, &Options::default()).unwrap();
    let image = module_image(&bytes);
    let shared = image.symbols["shared"];
    assert_eq!(image.bytes(shared, 4), Some(&1u32.to_le_bytes()[..]));
    for function in ["get_a", "get_b"] {
        let at = image.symbols[function];
        let disp = image.u32_at(at + 2).unwrap() as i32;
        assert_eq!(
            (at as i64 + 6 + i64::from(disp)) as u64,
            shared,
            "{function}"
        );
    }
    let error = pack_error(&[
        comdat("a.s", "same_size", ".long 1"),
        comdat("b.s", "same_size", ".fill 64, 1, 0"),
    ]);
    assert!(
        error.contains("COMDAT `shared`") && error.contains("different sizes"),
        "{error}"
    );
    let error = pack_error(&[
        comdat("a.s", "same_contents", ".long 1"),
        comdat("b.s", "same_contents", ".long 2"),
    ]);
    assert!(error.contains("different contents"), "{error}");
    let error = pack_error(&[
        comdat("a.s", "one_only", ".long 1"),
        comdat("b.s", "one_only", ".long 1"),
    ]);
    assert!(error.contains("NODUPLICATES"), "{error}");
}

#[test]
fn rel32_n_counts_from_the_end_of_the_instruction() {
    // GNU as and clang fold the immediate's size into a plain REL32's addend; MSVC and
    // Cranelift write REL32_1..REL32_5. `movl $7, counter(%rip)`: c7 05 <disp32> <imm32>, the
    // displacement from the end of the 10-byte instruction, 4 bytes after the field's end.
    use object::write::{Object as Writer, Relocation, StandardSection, Symbol, SymbolSection};
    let mut writer = Writer::new(
        object::BinaryFormat::Coff,
        object::Architecture::X86_64,
        object::Endianness::Little,
    );
    let text = writer.section_id(StandardSection::Text);
    let code = [0xc7, 0x05, 0, 0, 0, 0, 7, 0, 0, 0, 0xc3];
    writer.append_section_data(text, &code, 16);
    let data = writer.section_id(StandardSection::Data);
    let offset = writer.append_section_data(data, &[0; 16], 8);
    let counter = writer.add_symbol(Symbol {
        name: b"counter".to_vec(),
        value: offset + 8,
        size: 4,
        kind: object::SymbolKind::Data,
        scope: object::SymbolScope::Dynamic,
        weak: false,
        section: SymbolSection::Section(data),
        flags: object::SymbolFlags::None,
    });
    writer.add_symbol(Symbol {
        name: b"store".to_vec(),
        value: 0,
        size: 0,
        kind: object::SymbolKind::Text,
        scope: object::SymbolScope::Dynamic,
        weak: false,
        section: SymbolSection::Section(text),
        flags: object::SymbolFlags::None,
    });
    writer
        .add_relocation(
            text,
            Relocation {
                offset: 2,
                symbol: counter,
                // object's writer takes ELF-style addends (from the field) and stores
                // `addend + 4 + 4` in it for REL32_4: 0 in the field, as MSVC writes.
                addend: -8,
                flags: object::RelocationFlags::Coff {
                    typ: pe::IMAGE_REL_AMD64_REL32_4,
                },
            },
        )
        .unwrap();
    let input = Input {
        name: "rel32_4.obj".into(),
        data: writer.write().unwrap(),
    };
    let bytes = smf_pack::pack(&[input], &Options::default()).unwrap();
    let image = module_image(&bytes);
    let (store, counter) = (image.symbols["store"], image.symbols["counter"]);
    let disp = image.u32_at(store + 2).unwrap() as i32;
    assert_eq!((store as i64 + 10 + i64::from(disp)) as u64, counter);
}

/// Cranelift's code for COFF (which has no GOT relocations) reaches an import, and any
/// symbol it does not know to be near, by `movabs $symbol, %reg`: a 64-bit address in code,
/// which the loader cannot write. The packer loads it PC-relatively instead: from the
/// import's GOT slot, or as a `lea` of an in-module address.
#[test]
fn movabs_of_an_import_or_a_module_address_becomes_a_rip_relative_load() {
    if !mingw_available() {
        return;
    }
    let dir = TempDir::new();
    let object = mingw_object(
        &dir.0,
        "movabs.s",
        "\t.text\n\t.globl f\nf:\n\tmovabs $puts, %rax\n\tmovabs $table+8, %r12\n\tret\n\
         \t.data\n\t.globl table\ntable:\n\t.quad 1, 2\n",
    );
    let bytes = smf_pack::pack(&[object], &Options::default()).unwrap();
    let module = Module::parse(&bytes).unwrap();
    let image = module_image(&bytes);
    let f = image.symbols["f"];
    let target = |at: u64| {
        let disp = image.u32_at(at + 6).unwrap() as i32;
        (at as i64 + 10 + i64::from(disp)) as u64
    };
    // nopl (%rax); mov disp32(%rip), %rax, the displacement reaching puts's slot.
    assert_eq!(
        image.bytes(f, 6),
        Some(&[0x0f, 0x1f, 0x00, 0x48, 0x8b, 0x05][..])
    );
    assert_eq!(
        image.imports.get(&target(f)).map(String::as_str),
        Some("puts")
    );
    // nopl (%rax); lea disp32(%rip), %r12, reaching table + 8.
    assert_eq!(
        image.bytes(f + 10, 6),
        Some(&[0x0f, 0x1f, 0x00, 0x4c, 0x8d, 0x25][..])
    );
    assert_eq!(target(f + 10), image.symbols["table"] + 8);
    // No load-time relocation of code: only the slot's.
    let relocs: Vec<_> = module
        .relocations()
        .iter()
        .map(|r| (r.kind, r.offset))
        .collect();
    assert_eq!(relocs, [(RelocKind::Abs64, target(f))]);
    assert!(module.relative_relocations().is_empty());
}

#[test]
fn elf_and_coff_objects_are_not_linked_together() {
    if !mingw_available() {
        return;
    }
    let dir = TempDir::new();
    let coff = mingw_object(&dir.0, "win.c", "int f(void) { return 1; }\n");
    let elf = util::compile("linux", "int g(void) { return 2; }\n", &["-fPIC"]);
    let error = pack_error(&[elf, coff]);
    assert!(
        error.contains("win.c is an x86-64 COFF object but linux") && error.contains("x86-64 ELF"),
        "{error}"
    );
}

#[test]
fn data_symbols_get_the_sizes_coff_does_not_record() {
    if !mingw_available() {
        return;
    }
    let dir = TempDir::new();
    let object = mingw_object(
        &dir.0,
        "data.c",
        "static int counter = 100;\n\
         struct totals { int calls; int last; } totals;\n\
         long long table[5] = {1};\n\
         char tail = 1;\n\
         int bump(void) { totals.calls++; table[1]++; tail++; return ++counter; }\n",
    );
    let bytes = smf_pack::pack(&[object], &Options::default()).unwrap();
    let module = Module::parse(&bytes).unwrap();
    let size = |name: &str| {
        module
            .symbols()
            .into_iter()
            .filter_map(Result::ok)
            .find(|s| s.name == name)
            .map(|s| s.size)
    };
    // A reload keeps a data symbol's value by its size: each is at least its type's size
    // and stops at the next symbol or the section's end (after padding up to the next
    // symbol's alignment: gcc aligns arrays of 32 bytes or more to 32).
    assert!(
        matches!(size("counter"), Some(4..=32)),
        "{:?}",
        size("counter")
    );
    assert!(
        matches!(size("totals"), Some(8..=32)),
        "{:?}",
        size("totals")
    );
    assert!(
        matches!(size("table"), Some(40..=64)),
        "{:?}",
        size("table")
    );
    assert!(matches!(size("tail"), Some(1..=32)), "{:?}", size("tail"));
}

#[test]
fn mingw_thread_key_destructors_are_run_from_a_tls_callback() {
    if !mingw_available() {
        return;
    }
    let dir = TempDir::new();
    // What the Win32-threads libstdc++ does for a thread_local with a destructor: register it
    // with libmingw32.a's tlsthrd.o, which runs it when `__mingw_TLScallback` is told of the
    // thread's end (from tlssup.o's TLS callbacks in a program).
    let object = mingw_object(
        &dir.0,
        "key.c",
        "int __mingwthr_key_dtor(unsigned long key, void (*dtor)(void *));\n\
         static void destroy(void *value) { (void) value; }\n\
         int register_key(unsigned long key) { return __mingwthr_key_dtor(key, destroy); }\n",
    );
    let path = mingw_lib_dir().join("libmingw32.a");
    let libmingw32 = Input {
        name: path.display().to_string(),
        data: std::fs::read(&path).unwrap(),
    };
    let bytes = smf_pack::pack(&[object.clone(), libmingw32], &Options::default()).unwrap();
    assert_eq!(tls_callback_names(&bytes), ["symbol __mingw_TLScallback"]);
    // Without tlsthrd.o, no such callback.
    let bytes = smf_pack::pack(&[object], &Options::default()).unwrap();
    assert!(tls_callback_names(&bytes).is_empty());
}

/// What the module's TLS callbacks are, in run order.
fn tls_callback_names(bytes: &[u8]) -> Vec<String> {
    let image = module_image(bytes);
    let module = Module::parse(bytes).unwrap();
    module
        .tls_callbacks()
        .iter()
        .map(|&a| image.describe(a))
        .collect()
}
