//! The SMF packer: a small static linker from ELF relocatable objects (x86-64 or aarch64) to
//! one module.
//!
//! [`pack`] takes the `.o` files a C or C++ compiler produced with `-fPIC` and returns the
//! bytes of an SMF module (`.smf`, or `.sme` with an entry point) for their architecture. Every reference between the
//! objects is resolved here; the module keeps only imports (symbols no input defines) and
//! 64-bit absolute addresses as load-time relocations. The stages, one module each:
//!
//! 1. [`input`]: parse and check each object, classify its sections; its `e_machine` picks
//!    the [`arch`] table that says what each relocation type means;
//! 2. [`resolve`]: pick COMDAT groups and resolve symbols across objects;
//! 3. [`relocate::scan`]: find imports, GOT slots and call stubs;
//! 4. [`layout`]: place input sections in output sections and those in the image;
//! 5. [`relocate::apply`]: write relocated values, collect load-time relocations;
//! 6. [`srcmap`]: the source map, from the DWARF line programs of `-g` objects;
//! 7. [`symbols`] and [`pack`]: build the symbol table and write the module.
//!
//! ```no_run
//! let object = std::fs::read("hello.o").unwrap();
//! let inputs = [smf_pack::Input { name: "hello.o".into(), data: object }];
//! let options = smf_pack::Options { entry: Some("main".into()), ..Default::default() };
//! let module = smf_pack::pack(&inputs, &options).unwrap();
//! std::fs::write("hello.sme", module).unwrap();
//! ```
#![forbid(unsafe_code)]

mod arch;
pub mod archive;
mod error;
mod fingerprint;
mod ifunc;
mod input;
mod layout;
mod relocate;
mod resolve;
pub mod response_file;
mod runtime;
mod srcmap;
mod symbols;
mod tls;
mod types;
mod undefined;
pub mod version_script;

pub use error::{Error, RelocationError, RelocationProblem};
pub use undefined::{Packed, UndefinedSymbol, UndefinedSymbols, display_name};

use smf_format::{Binding, Import, LoadedSection, ModuleBuilder, ModuleFlags, Reloc, RelocKind};

use crate::layout::{Layout, OutputKind};
use crate::resolve::{Definition, Globals};

/// One input object file.
#[derive(Debug, Clone)]
pub struct Input {
    /// The path shown in error messages.
    pub name: String,
    /// The bytes of the ELF relocatable object.
    pub data: Vec<u8>,
}

/// What to put in the module besides the objects' contents.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The exported function where execution starts; makes the module executable.
    pub entry: Option<String>,
    /// Marks the module as replaceable while the process runs.
    pub reloadable: bool,
    /// Native libraries the loader opens before resolving imports, in order.
    pub needed: Vec<String>,
    /// Whether to look for imports that nothing defines (read from `needed` and the C
    /// library on disk), and whether they are an error.
    pub undefined: UndefinedSymbols,
    /// Names the host program defines for modules (`Registry::define`), which the check of
    /// `undefined` counts as defined.
    pub host_symbols: Vec<String>,
    /// Which loaded payloads to store zstd-compressed (`docs/FORMAT.md`, *Compressed
    /// payloads*); none by default.
    pub compression: smf_format::Compression,
    /// The module's version; with it, or with a module name, module dependencies or symbol
    /// versions, the module gets a version table (`docs/FORMAT.md`, *Version table*), and
    /// without it the version is 0.0.0.
    pub version: Option<smf_format::Version>,
    /// The name other modules' dependencies name this one by (without it, loaders use the
    /// file name).
    pub module_name: Option<String>,
    /// Modules this one depends on, each with the range of versions it accepts.
    pub module_dependencies: Vec<(String, smf_format::VersionReq)>,
    /// Versions of exported symbols (from a version script), by name; the others have the
    /// module's version.
    pub symbol_versions: Vec<(String, smf_format::Version)>,
}

/// Links `inputs` into one SMF module and returns its bytes.
///
/// An input may be a static archive (`.a`): the link takes those of its members that define
/// a symbol still undefined, as GNU ld does (see [`archive::select_members`]).
pub fn pack(inputs: &[Input], options: &Options) -> Result<Vec<u8>, Error> {
    pack_report(inputs, options).map(|packed| packed.module)
}

/// Links `inputs` into one SMF module and returns it with what the packer found on the way
/// (undefined symbols, with [`UndefinedSymbols::Warn`]).
pub fn pack_report(inputs: &[Input], options: &Options) -> Result<Packed, Error> {
    // The first object's machine; every other must match it (checked once all are read).
    // Archive members count when no object is given.
    let first_arch = |inputs: &[Input]| inputs.iter().find_map(|input| input::arch(&input.data));
    let reserved = first_arch(inputs).map_or(&[][..], |arch| arch.archives_never_define);
    let inputs = &*archive::select_members(inputs, reserved)?;
    let arch = first_arch(inputs).unwrap_or(&arch::x86_64::ARCH);
    let support = runtime::support_object(inputs, arch);
    let mut objects = inputs
        .iter()
        .chain(support.as_ref())
        .map(|input| input::read_object(&input.name, &input.data))
        .collect::<Result<Vec<_>, _>>()?;
    check_one_arch(&objects)?;
    resolve::select_comdat_groups(&mut objects)?;
    let mut globals = Globals::build(&objects)?;
    let needs = relocate::scan(&objects, &mut globals)?;
    let (undefined, unreadable_libraries) = match options.undefined {
        UndefinedSymbols::Ignore => (Vec::new(), Vec::new()),
        // Windows modules import from DLLs, whose exports the packer does not read.
        UndefinedSymbols::Warn if arch.platform == smf_format::Platform::Windows => {
            (Vec::new(), Vec::new())
        }
        UndefinedSymbols::Error if arch.platform == smf_format::Platform::Windows => {
            return Err(Error::Object {
                file: inputs.first().map_or_else(String::new, |i| i.name.clone()),
                problem: "is a COFF object: checking for undefined symbols (--no-undefined) \
                          needs the DLLs' exports, which smf pack does not read for Windows \
                          modules"
                    .into(),
            });
        }
        check => {
            let (undefined, unreadable) =
                undefined::find(arch, &objects, &globals, &needs, options);
            if check == UndefinedSymbols::Error && !(undefined.is_empty() && unreadable.is_empty())
            {
                return Err(Error::Undefined {
                    symbols: undefined,
                    unreadable_libraries: unreadable,
                });
            }
            (undefined, unreadable)
        }
    };
    let mut layout = Layout::build(arch, &objects, &globals, &needs)?;
    let load_relocs = relocate::apply(&objects, &globals, &needs, &mut layout)?;
    layout.sort_function_table()?;
    // Aligned `relative64` relocations whose word already holds the addend (the packer writes
    // every in-module address there) go to the packed table: 8 bytes or less each, instead of
    // a 24-byte entry the loader must decode.
    let (relative, load_relocs): (Vec<Reloc>, Vec<Reloc>) =
        load_relocs.into_iter().partition(|r| {
            r.kind == RelocKind::Relative64
                && r.offset % 8 == 0
                && layout.read_u64(r.offset) == Some(r.addend as u64)
        });
    let mut tables = relocate::constructors(&objects, &globals, &layout)?;
    // The C runtime's functions that its start-up objects' TLS callbacks call, when the
    // module holds them (`Arch::runtime_tls_callbacks`): TLS callbacks of the module.
    for name in arch.runtime_tls_callbacks.iter().rev() {
        if let Ok(address) = entry_point(&globals, &objects, &layout, name) {
            tables.tls_callbacks.insert(0, address);
        }
    }
    let entry = options
        .entry
        .as_deref()
        .map(|name| entry_point(&globals, &objects, &layout, name))
        .transpose()?;

    let source_map = srcmap::build(inputs, &layout)?;

    let mut builder = ModuleBuilder::new();
    builder.arch = arch.format;
    builder.platform = arch.platform;
    builder.page_size = arch.page_size;
    builder.source_hash = source_hash(inputs);
    builder.entry_point = entry;
    builder.compression = options.compression;
    if options.reloadable {
        builder.flags = builder.flags.union(ModuleFlags::RELOADABLE);
    }
    for library in &options.needed {
        builder.add_needed(library);
    }
    if !source_map.is_empty() {
        builder.flags = builder.flags.union(ModuleFlags::DEBUG_INFO);
        builder.set_source_map(&source_map).map_err(Error::Format)?;
    }

    // Section indices are assigned in the order sections are added; compute them first so
    // that the symbol table can refer to them.
    let mut indices = [None; OutputKind::ALL.len()];
    let mut next = 0u32;
    for (slot, output) in indices.iter_mut().zip(&layout.outputs) {
        if output.size > 0 {
            *slot = Some(next);
            next += 1;
        }
    }
    let symbols = symbols::build(&objects, &globals, &layout, &indices)?;

    for output in std::mem::take(&mut layout.outputs) {
        if output.size == 0 {
            continue;
        }
        builder.add_section(LoadedSection {
            kind: output.kind.section_kind(),
            name: output.kind.name(),
            vaddr: output.vaddr,
            mem_size: output.size,
            align: output.align,
            data: output.data,
        });
    }
    // Types from the objects' DWARF (`-g`), for the functions and data each defines.
    let object_data: Vec<&[u8]> = inputs
        .iter()
        .chain(support.as_ref())
        .map(|input| &*input.data)
        .collect();
    let mut types = smf_format::typeinfo::TypeTableBuilder::new();
    let by_object = types::collect(&object_data, &mut types);
    let typed = |symbol: &smf_format::Symbol<'_>, object: Option<(usize, usize)>| {
        let ty = *by_object.get(object?.0)?.get(symbol.name)?;
        let is_function = types.kind_of(ty)? == smf_format::typeinfo::TypeKind::Function;
        (is_function == (symbol.kind == smf_format::SymbolKind::Function)).then_some(ty)
    };
    // What a reload compares instead of reading both versions' code.
    if options.reloadable {
        for (index, fingerprint) in fingerprint::exported(&objects, &globals, &symbols) {
            builder.add_fingerprint(index, fingerprint);
        }
    }
    let symbols: Vec<_> = symbols
        .into_iter()
        .map(|(symbol, object)| smf_format::Symbol {
            type_id: typed(&symbol, object).unwrap_or(0),
            ..symbol
        })
        .collect();
    // The reader of DWARF builds tables the format accepts; should it not, the module is
    // still packed, without types, rather than refused for information it does not need.
    let any_typed = symbols.iter().any(|s| s.type_id != 0);
    let types_valid = smf_format::typeinfo::TypeInfo::parse(&types.encode()).is_ok();
    if any_typed && types_valid {
        builder.set_types(&types);
    }
    let mut symbols = symbols;
    let versioned = options.version.is_some()
        || options.module_name.is_some()
        || !options.module_dependencies.is_empty()
        || !options.symbol_versions.is_empty();
    if versioned {
        let mut table = smf_format::Versions::new(options.version.unwrap_or_default());
        table.name = options.module_name.clone();
        for (name, req) in &options.module_dependencies {
            table.require(name, *req);
        }
        for (name, version) in &options.symbol_versions {
            let index = table.index_of(*version);
            let mut found = false;
            for symbol in symbols
                .iter_mut()
                .filter(|s| s.name == name && s.is_exported())
            {
                symbol.version = index;
                found = true;
            }
            if !found {
                return Err(Error::Symbol {
                    file: "the symbol versions".to_owned(),
                    symbol: name.clone(),
                    problem: format!("given version {version}, but no input exports it"),
                });
            }
        }
        builder.set_versions(&table).map_err(Error::Format)?;
    }
    for symbol in symbols {
        builder.add_symbol(smf_format::Symbol {
            type_id: if types_valid { symbol.type_id } else { 0 },
            ..symbol
        });
    }
    for &id in &needs.imports {
        let Some(global) = globals.symbols.get(id) else {
            continue;
        };
        builder.add_import(Import {
            name: global.name,
            kind: global.import_kind,
            binding: if global.strong_reference {
                Binding::Global
            } else {
                Binding::Weak
            },
            type_id: 0,
            version: 0,
        });
    }
    for reloc in load_relocs {
        builder.add_reloc(reloc);
    }
    for reloc in relative {
        builder.add_relative(reloc.offset);
    }
    // glibc runs a shared object's DT_INIT (the `.init` fragments) before its `.init_array`,
    // and DT_FINI after its `.fini_array`.
    let legacy_init = layout.legacy_function(input::Legacy::Init);
    let legacy_fini = layout.legacy_function(input::Legacy::Fini);
    for offset in legacy_init.into_iter().chain(tables.init) {
        builder.add_init(offset);
    }
    for offset in tables.fini.into_iter().chain(legacy_fini) {
        builder.add_fini(offset);
    }
    for offset in tables.tls_callbacks {
        builder.add_tls_callback(offset);
    }
    Ok(Packed {
        module: builder.write().map_err(Error::Format)?,
        undefined,
        unreadable_libraries,
    })
}

/// Refuses inputs of different architectures, naming the first of each.
fn check_one_arch(objects: &[input::Object<'_>]) -> Result<(), Error> {
    let Some(first) = objects.first() else {
        return Ok(());
    };
    match objects
        .iter()
        .find(|o| o.arch.machine != first.arch.machine || o.arch.platform != first.arch.platform)
    {
        // Name the object formats too when they are what differs (ELF and COFF x86-64).
        Some(other) if other.arch.machine == first.arch.machine => Err(Error::MixedArchitectures {
            first: first.name.to_owned(),
            first_arch: first.arch.name,
            second: other.name.to_owned(),
            second_arch: other.arch.name,
        }),
        Some(other) => Err(Error::MixedArchitectures {
            first: first.name.to_owned(),
            first_arch: first.arch.format.name(),
            second: other.name.to_owned(),
            second_arch: other.arch.format.name(),
        }),
        None => Ok(()),
    }
}

/// The image offset of the entry function, which must be an exported function in code.
fn entry_point(
    globals: &Globals<'_>,
    objects: &[input::Object<'_>],
    layout: &Layout,
    name: &str,
) -> Result<u64, Error> {
    let entry_error = |problem: &str| Error::Entry {
        symbol: name.to_owned(),
        problem: problem.to_owned(),
    };
    let global = globals
        .get(name)
        .and_then(|id| globals.symbols.get(id).map(|g| (id, g)));
    let Some((id, global)) =
        global.filter(|(_, g)| matches!(g.definition, Definition::Defined { .. }))
    else {
        return Err(entry_error("is not defined by any input"));
    };
    if global.visibility == input::SymbolVisibility::Hidden {
        return Err(entry_error("is hidden; the entry point must be exported"));
    }
    match relocate::resolve_target(objects, globals, layout, resolve::SymbolRef::Global(id)) {
        relocate::Target::Address(address) => match u64::try_from(address) {
            Ok(address) if layout.output(OutputKind::Code).contains(address) => Ok(address),
            _ => Err(entry_error("is not a function (it does not lie in code)")),
        },
        _ => Err(entry_error("is not a function (it does not lie in code)")),
    }
}

/// Identifies the inputs: the first 8 bytes of a BLAKE3 hash over each input's name and
/// bytes, each prefixed with its length so that no two different input lists collide by
/// concatenation.
fn source_hash(inputs: &[Input]) -> u64 {
    let mut hasher = blake3::Hasher::new();
    for input in inputs {
        hasher.update(&(input.name.len() as u64).to_le_bytes());
        hasher.update(input.name.as_bytes());
        hasher.update(&(input.data.len() as u64).to_le_bytes());
        hasher.update(&input.data);
    }
    let hash = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash.as_bytes()[..8]);
    u64::from_le_bytes(first)
}
