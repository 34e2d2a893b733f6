//! A readelf-style description of a module, as `smf inspect` prints it.

use core::fmt::{self, Write};

use crate::read::{Module, Reloc, Section, Symbol};
use crate::types::{RelocKind, SectionKind};

/// The parts of a report, like readelf's `-h`, `-S`, `-s`, `-r`, `-d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parts {
    pub header: bool,
    pub sections: bool,
    pub symbols: bool,
    pub imports: bool,
    /// Load-time relocations, the listed ones and the packed relative ones.
    pub relocations: bool,
    pub needed: bool,
    /// Constructors and destructors.
    pub constructors: bool,
    /// The types of the exported symbols and imports (`typeinfo`), and the layouts of the
    /// structs they reach. In [`Parts::ALL`] shown only when the module has types.
    pub types: bool,
}

impl Parts {
    pub const ALL: Parts = Parts {
        header: true,
        sections: true,
        symbols: true,
        imports: true,
        relocations: true,
        needed: true,
        constructors: true,
        types: true,
    };
    pub const NONE: Parts = Parts {
        header: false,
        sections: false,
        symbols: false,
        imports: false,
        relocations: false,
        needed: false,
        constructors: false,
        types: false,
    };
}

/// Writes the header, sections, symbols, imports, relocations, needed libraries and
/// constructor/destructor lists of `module`.
pub fn write_report(module: &Module<'_>, out: &mut impl Write) -> fmt::Result {
    write_report_parts(module, Parts::ALL, out)
}

/// Writes the `parts` of the report of `module`, in report order, a blank line between two.
pub fn write_report_parts(module: &Module<'_>, parts: Parts, out: &mut impl Write) -> fmt::Result {
    let symbols = SymbolsByAddress::new(module);
    let symbol_suffix = |module: &Module<'_>, offset| symbol_suffix(module, &symbols, offset);
    let mut started = false;
    let mut gap = |out: &mut dyn Write| -> fmt::Result {
        if core::mem::replace(&mut started, true) {
            writeln!(out)?;
        }
        Ok(())
    };
    if parts.header {
        gap(out)?;
        write_header(module, &symbol_suffix, out)?;
    }
    if parts.sections {
        gap(out)?;
        write_sections(module, out)?;
        for table in module
            .loaded_sections()
            .filter(|s| s.kind == SectionKind::Pdata)
        {
            gap(out)?;
            write_function_table(module, table, &symbol_suffix, out)?;
        }
    }
    if parts.symbols {
        gap(out)?;
        write_symbols(module, out)?;
        // Reloadable modules only, so shown only when there are some.
        if module.fingerprints().len() > 0 {
            gap(out)?;
            writeln!(out, "Fingerprints ({}):", module.fingerprints().len())?;
            writeln!(out, "   Num Fingerprint        Name")?;
            for (i, fingerprint) in module.fingerprints() {
                let name = module
                    .symbol(i)
                    .and_then(Result::ok)
                    .map_or("?", |s| s.name);
                writeln!(
                    out,
                    "  {i:4} {fingerprint:016x}   {}",
                    crate::with_demangled(name)
                )?;
            }
        }
    }
    if parts.imports {
        gap(out)?;
        write_imports(module, out)?;
    }
    if parts.relocations {
        gap(out)?;
        write_relocations(module, &symbol_suffix, out)?;
    }
    if parts.needed {
        gap(out)?;
        writeln!(out, "Needed libraries ({}):", module.needed().len())?;
        for lib in module.needed() {
            writeln!(out, "  {lib}")?;
        }
        // Module dependencies (`smf pack --needed name@RANGE`), from the version table.
        if let Some(table) = module
            .versions()
            .filter(|t| t.dependencies().next().is_some())
        {
            gap(out)?;
            writeln!(out, "Needed modules ({}):", table.dependencies().count())?;
            for d in table.dependencies() {
                writeln!(out, "  {} {}", d.name, d.req)?;
            }
        }
    }
    if parts.constructors {
        for (title, list) in [
            ("Constructors", module.init_array()),
            ("Destructors", module.fini_array()),
        ] {
            gap(out)?;
            writeln!(out, "{title} ({}, in run order):", list.len())?;
            for &offset in list {
                writeln!(out, "  {offset:#010x}{}", symbol_suffix(module, offset))?;
            }
        }
        // Windows modules only, so shown only when there are some.
        let callbacks = module.tls_callbacks();
        if !callbacks.is_empty() {
            gap(out)?;
            writeln!(out, "TLS callbacks ({}, in run order):", callbacks.len())?;
            for &offset in callbacks {
                writeln!(out, "  {offset:#010x}{}", symbol_suffix(module, offset))?;
            }
        }
    }
    if parts.types && (parts != Parts::ALL || !module.types().is_empty()) {
        gap(out)?;
        write_types(module, out)?;
    }
    Ok(())
}

/// The typed exports and imports (`name: type`), then the structs and unions they reach with
/// their layouts.
fn write_types(module: &Module<'_>, out: &mut impl Write) -> fmt::Result {
    let types = module.types();
    let exports: Vec<_> = module
        .symbols()
        .exported()
        .filter(|(_, s)| s.type_id != 0)
        .map(|(_, s)| s)
        .collect();
    let imports: Vec<_> = module.imports().iter().filter(|i| i.type_id != 0).collect();
    writeln!(
        out,
        "Types ({} in the table; {} exports, {} imports typed):",
        types.len(),
        exports.len(),
        imports.len()
    )?;
    let mut records = Vec::new();
    for (what, name, id) in exports
        .iter()
        .map(|s| ("export", s.name, s.type_id))
        .chain(imports.iter().map(|i| ("import", i.name, i.type_id)))
    {
        writeln!(
            out,
            "  {what} {}: {}",
            crate::with_demangled(name),
            types.display(id)
        )?;
        for record in types.records_reached(id) {
            if !records.contains(&record) {
                records.push(record);
            }
        }
    }
    for record in records {
        if let Some(layout) = types.describe_record(record) {
            writeln!(out, "  {layout}")?;
        }
    }
    Ok(())
}

fn write_header(
    module: &Module<'_>,
    symbol_suffix: &dyn Fn(&Module<'_>, u64) -> String,
    out: &mut impl Write,
) -> fmt::Result {
    let h = module.header();
    writeln!(out, "SMF header:")?;
    writeln!(
        out,
        "  Version:       {}.{}",
        h.version_major, h.version_minor
    )?;
    writeln!(out, "  Platform:      {}", h.platform)?;
    writeln!(out, "  Architecture:  {}", h.arch)?;
    writeln!(out, "  Flags:         {:#x} ({})", h.flags.0, h.flags)?;
    writeln!(out, "  Image size:    {:#x}", h.image_size)?;
    writeln!(out, "  Page size:     {:#x}", h.page_size)?;
    if let Some(table) = module.versions() {
        let name = table.name().map_or(String::new(), |n| format!(" ({n})"));
        writeln!(out, "  Module version: {}{name}", table.module_version())?;
    }
    // The head (FORMAT.md, *File layout*), for a module parsed from the whole file.
    if module.data().len() as u64 == module.file_size() {
        let payloads = module.loaded_sections().any(|s| s.file_size > 0);
        match crate::read::head_len(module.data()) {
            Some(head) => writeln!(
                out,
                "  Head:          {head:#x} (header, section table and tables; payloads follow)"
            )?,
            None if h.flags.contains(crate::types::ModuleFlags::COMPRESSED) => writeln!(
                out,
                "  Head:          none (compressed payloads are decompressed, not mapped)"
            )?,
            None if payloads => {
                writeln!(out, "  Head:          none (a table lies after a payload)")?
            }
            None => writeln!(out, "  Head:          none (no payload bytes)")?,
        }
    }
    match h.entry_point {
        Some(entry) => writeln!(
            out,
            "  Entry point:   {entry:#x}{}",
            symbol_suffix(module, entry)
        )?,
        None => writeln!(out, "  Entry point:   none (library)")?,
    }
    writeln!(out, "  Source hash:   {:#018x}", h.source_hash)?;
    write!(out, "  Module hash:   ")?;
    for byte in h.module_hash {
        write!(out, "{byte:02x}")?;
    }
    writeln!(out)
}

fn write_sections(module: &Module<'_>, out: &mut impl Write) -> fmt::Result {
    writeln!(out, "Sections ({}):", module.sections().len())?;
    writeln!(
        out,
        "  [Nr] Name             Kind        Flags  Offset     FileSize   Address    MemSize    Align"
    )?;
    for s in module.sections() {
        let (address, mem) = if s.kind.is_loaded() {
            (
                format!("{:#010x}", s.vaddr),
                format!("{:#010x}", s.mem_size),
            )
        } else {
            ("-".into(), "-".into())
        };
        write!(
            out,
            "  [{:2}] {:<16} {:<11} {:<6} {:#010x} {:#010x} {:<10} {:<10} {}",
            s.index, s.name, s.kind, s.flags, s.file_offset, s.file_size, address, mem, s.align
        )?;
        match s.compressed() {
            Some(c) => writeln!(out, "  zstd, {:#x} bytes decompressed", c.raw_size)?,
            None => writeln!(out)?,
        }
    }
    Ok(())
}

/// A Windows module's function table: each function's range, its unwind information and
/// name, as `RtlAddFunctionTable` will see them (image offsets are RVAs).
fn write_function_table(
    module: &Module<'_>,
    table: &crate::Section<'_>,
    symbol_suffix: &dyn Fn(&Module<'_>, u64) -> String,
    out: &mut impl Write,
) -> fmt::Result {
    let entries = table.mem_size / crate::raw::PDATA_ENTRY_SIZE;
    writeln!(
        out,
        "Function table ({entries} entries at {:#x}, for RtlAddFunctionTable with the image base):",
        table.vaddr
    )?;
    writeln!(out, "  Begin      End        Unwind     Function")?;
    for entry in table
        .data
        .chunks_exact(crate::raw::PDATA_ENTRY_SIZE as usize)
    {
        let word = |i: usize| {
            u64::from(u32::from_le_bytes([
                entry[i],
                entry[i + 1],
                entry[i + 2],
                entry[i + 3],
            ]))
        };
        let (begin, end, unwind) = (word(0), word(4), word(8));
        writeln!(
            out,
            "  {begin:#010x} {end:#010x} {unwind:#010x}{}",
            symbol_suffix(module, begin)
        )?;
    }
    Ok(())
}

fn write_symbols(module: &Module<'_>, out: &mut impl Write) -> fmt::Result {
    writeln!(out, "Symbols ({}):", module.symbols().len())?;
    writeln!(
        out,
        "   Num Value      Size       Kind   Bind   Vis       Sec TypeId     Ver  Name"
    )?;
    for (i, s) in module.symbols().iter().enumerate() {
        // An entry no load uses may be broken (the reader checks those when read): shown
        // with what is wrong.
        let s = match s {
            Ok(s) => s,
            Err(e) => {
                writeln!(out, "  {i:4} BROKEN: {e}")?;
                continue;
            }
        };
        let section = s.section.map_or("ABS".into(), |i| i.to_string());
        // With a version table, the version the field names; without, the raw field.
        let version = match module.versions() {
            Some(table) => table
                .version(s.version)
                .map_or_else(|| format!("?{}", s.version), |v| v.to_string()),
            None => s.version.to_string(),
        };
        writeln!(
            out,
            "  {i:4} {:#010x} {:<10} {:<6} {:<6} {:<9} {:>3} {:#010x} {:<4} {}",
            s.value,
            s.size,
            s.kind,
            s.binding,
            s.visibility,
            section,
            s.type_id,
            version,
            crate::with_demangled(s.name)
        )?;
    }
    Ok(())
}

fn write_imports(module: &Module<'_>, out: &mut impl Write) -> fmt::Result {
    writeln!(out, "Imports ({}):", module.imports().len())?;
    if !module.imports().is_empty() {
        writeln!(out, "   Num Kind  Bind   TypeId     Ver  Name")?;
    }
    for (i, imp) in module.imports().iter().enumerate() {
        writeln!(
            out,
            "  {i:4} {:<5} {:<6} {:#010x} {:<4} {}",
            imp.kind,
            imp.binding,
            imp.type_id,
            imp.version,
            crate::with_demangled(imp.name)
        )?;
    }
    Ok(())
}

fn write_relocations(
    module: &Module<'_>,
    symbol_suffix: &dyn Fn(&Module<'_>, u64) -> String,
    out: &mut impl Write,
) -> fmt::Result {
    writeln!(out, "Relocations ({}):", module.relocations().len())?;
    if !module.relocations().is_empty() {
        writeln!(out, "  Offset     Section          Kind        Value")?;
    }
    for r in module.relocations() {
        let section = module.section_at(r.offset).map_or("?", |s| s.name);
        let target = reloc_target(module, symbol_suffix, &r);
        writeln!(
            out,
            "  {:#010x} {:<16} {:<11} {target}",
            r.offset, section, r.kind
        )?;
    }

    let packed = module.relative_relocations();
    if !packed.is_empty() {
        writeln!(
            out,
            "\nPacked relative relocations ({}, in {} relr words):",
            packed.len(),
            packed.words().len()
        )?;
        writeln!(out, "  Offset     Section          Kind        Value")?;
    }
    let payloads = Payloads::new(module);
    for offset in packed {
        let (section, addend) = relative_addend(module, &payloads, offset);
        writeln!(
            out,
            "  {offset:#010x} {:<16} {:<11} base + {addend:#x}{}",
            section.map_or("?", |s| s.name),
            RelocKind::Relative64,
            symbol_suffix(module, addend)
        )?;
    }
    Ok(())
}

/// What a load-time relocation writes, as the report says it: `name +0x8` for an import,
/// `base + 0x1234 <symbol+0x4>` for an address in the module, and so on.
fn reloc_target(
    module: &Module<'_>,
    symbol_suffix: &dyn Fn(&Module<'_>, u64) -> String,
    r: &Reloc,
) -> String {
    match (
        r.kind,
        r.import.and_then(|i| module.imports().get(i as usize)),
    ) {
        (_, Some(imp)) => format!("{} {:+#x}", imp.name, r.addend),
        (RelocKind::TlsModule, None) => "tls block handle".to_owned(),
        (RelocKind::TlsDescriptor, None) => "tls descriptor function".to_owned(),
        (RelocKind::TpOffset, None) => {
            // The addend is an offset in the block; name the variable there.
            let tls = module
                .loaded_sections()
                .find(|s| s.kind == SectionKind::Tls);
            let suffix = tls.map_or(String::new(), |t| {
                symbol_suffix(module, t.vaddr.wrapping_add(r.addend as u64))
            });
            format!("tp + tls block + {:#x}{suffix}", r.addend)
        }
        (RelocKind::Irelative, None) => format!(
            "call base + {:#x}{}",
            r.addend,
            symbol_suffix(module, r.addend as u64)
        ),
        (_, None) => format!(
            "base + {:#x}{}",
            r.addend,
            symbol_suffix(module, r.addend as u64)
        ),
    }
}

/// Sections' initialised bytes, decompressed once each for compressed sections (empty if
/// that fails).
struct Payloads<'data>(Vec<std::cell::OnceCell<std::borrow::Cow<'data, [u8]>>>);

impl<'data> Payloads<'data> {
    fn new(module: &Module<'data>) -> Self {
        Payloads(vec![std::cell::OnceCell::new(); module.sections().len()])
    }

    fn of(&self, section: &Section<'data>) -> &[u8] {
        match self.0.get(section.index as usize) {
            Some(cell) => cell.get_or_init(|| section.payload().unwrap_or_default()),
            None => &[],
        }
    }
}

/// The section of a packed relative relocation and its addend, the word in place (zero past
/// the section's file bytes).
fn relative_addend<'m, 'data>(
    module: &'m Module<'data>,
    payloads: &Payloads<'data>,
    offset: u64,
) -> (Option<&'m Section<'data>>, u64) {
    let section = module.section_at(offset);
    let addend = section
        .and_then(|s| {
            let at = usize::try_from(offset - s.vaddr).ok()?;
            payloads.of(s).get(at..at.checked_add(8)?)
        })
        .map_or(0, |word| {
            u64::from_le_bytes(word.try_into().unwrap_or_default())
        });
    (section, addend)
}

/// The report as JSON, for tools: the same `parts`, each a key of one object (`header`,
/// `sections`, `symbols`, `imports`, `relocations` and `relative_relocations`, `needed`,
/// `constructors` and `destructors`). Numbers are JSON numbers; hashes are hex strings;
/// enums are the names the text report prints; `demangled` is a C++ or Rust name's readable
/// form (`null` for others); `symbol` names the symbol an address falls
/// in (`null` if none) and `symbol_offset` how far into it.
pub fn json_report(module: &Module<'_>, parts: Parts) -> serde_json::Value {
    use serde_json::{Map, Value, json};
    let symbols = SymbolsByAddress::new(module);
    let symbol_at = |offset: u64| -> (Value, Value) {
        let in_section = module.section_at(offset).is_some_and(|section| {
            !(section.kind == SectionKind::Bss && offset == section.vaddr + section.mem_size)
        });
        match symbols.at(offset).filter(|_| in_section) {
            Some(s) => (json!(s.name), json!(offset - s.value)),
            None => (Value::Null, Value::Null),
        }
    };
    let symbol_suffix = |module: &Module<'_>, offset| symbol_suffix(module, &symbols, offset);
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let mut report = Map::new();
    if parts.header {
        let h = module.header();
        let (entry_symbol, _) = h.entry_point.map_or((Value::Null, Value::Null), symbol_at);
        report.insert(
            "header".into(),
            json!({
                "version": format!("{}.{}", h.version_major, h.version_minor),
                "platform": h.platform.to_string(),
                "architecture": h.arch.to_string(),
                "flags": h.flags.0,
                "flag_names": h.flags.to_string(),
                "image_size": h.image_size,
                "page_size": h.page_size,
                "entry_point": h.entry_point,
                "entry_symbol": entry_symbol,
                "source_hash": format!("{:016x}", h.source_hash),
                "module_hash": hex(&h.module_hash),
            }),
        );
        if let (Some(table), Some(Value::Object(header))) =
            (module.versions(), report.get_mut("header"))
        {
            header.insert(
                "module_version".into(),
                json!(table.module_version().to_string()),
            );
            header.insert("module_name".into(), json!(table.name()));
        }
    }
    if parts.sections {
        let sections = module.sections().iter().map(|s| {
            let loaded = s.kind.is_loaded();
            let mut section = json!({
                "index": s.index,
                "name": s.name,
                "kind": s.kind.to_string(),
                "flags": s.flags.to_string(),
                "file_offset": s.file_offset,
                "file_size": s.file_size,
                "address": loaded.then_some(s.vaddr),
                "mem_size": loaded.then_some(s.mem_size),
                "align": s.align,
            });
            if let Some(c) = s.compressed() {
                section["compression"] = json!({ "algorithm": "zstd", "raw_size": c.raw_size });
            }
            section
        });
        report.insert("sections".into(), Value::Array(sections.collect()));
        // A Windows module's function table, as `RtlAddFunctionTable` sees it.
        if let Some(table) = module
            .loaded_sections()
            .find(|s| s.kind == SectionKind::Pdata)
        {
            let entries = table
                .data
                .chunks_exact(crate::raw::PDATA_ENTRY_SIZE as usize)
                .map(|entry| {
                    let word = |i: usize| {
                        u32::from_le_bytes([entry[i], entry[i + 1], entry[i + 2], entry[i + 3]])
                    };
                    let begin = u64::from(word(0));
                    let function = symbols
                        .at(begin)
                        .filter(|s| s.value == begin)
                        .map(|s| s.name);
                    json!({
                        "begin": begin,
                        "end": word(4),
                        "unwind_info": word(8),
                        "function": function,
                    })
                });
            report.insert("function_table".into(), Value::Array(entries.collect()));
        }
    }
    if parts.symbols {
        let list = module.symbols().iter().enumerate().map(|(i, s)| {
            let s = match s {
                Ok(s) => s,
                Err(e) => return json!({ "index": i, "error": e.to_string() }),
            };
            json!({
                "index": i,
                "name": s.name,
                "demangled": crate::demangle(s.name),
                "value": s.value,
                "size": s.size,
                "kind": s.kind.to_string(),
                "binding": s.binding.to_string(),
                "visibility": s.visibility.to_string(),
                "section": s.section,
                "type_id": s.type_id,
                "version": s.version,
                "version_semver": module.symbol_version(&s).map(|v| v.to_string()),
                "fingerprint": module.fingerprint(i).map(|f| format!("{f:016x}")),
            })
        });
        report.insert("symbols".into(), Value::Array(list.collect()));
    }
    if parts.imports {
        let list = module.imports().iter().enumerate().map(|(i, imp)| {
            json!({
                "index": i,
                "name": imp.name,
                "demangled": crate::demangle(imp.name),
                "kind": imp.kind.to_string(),
                "binding": imp.binding.to_string(),
                "type_id": imp.type_id,
                "version": imp.version,
            })
        });
        report.insert("imports".into(), Value::Array(list.collect()));
    }
    if parts.relocations {
        let list = module.relocations().into_iter().map(|r| {
            let import = r
                .import
                .and_then(|i| module.imports().get(i as usize))
                .map(|imp| imp.name);
            json!({
                "offset": r.offset,
                "section": module.section_at(r.offset).map(|s| s.name),
                "kind": r.kind.to_string(),
                "import": import,
                "addend": r.addend,
                "value": reloc_target(module, &symbol_suffix, &r),
            })
        });
        report.insert("relocations".into(), Value::Array(list.collect()));
        let payloads = Payloads::new(module);
        let list = module.relative_relocations().into_iter().map(|offset| {
            let (section, addend) = relative_addend(module, &payloads, offset);
            let (symbol, symbol_offset) = symbol_at(addend);
            json!({
                "offset": offset,
                "section": section.map(|s| s.name),
                "addend": addend,
                "symbol": symbol,
                "symbol_offset": symbol_offset,
            })
        });
        report.insert("relative_relocations".into(), Value::Array(list.collect()));
    }
    if parts.needed {
        report.insert("needed".into(), json!(module.needed()));
        if let Some(table) = module.versions() {
            let modules: Vec<_> = table
                .dependencies()
                .map(|d| json!({ "name": d.name, "required": d.req.to_string() }))
                .collect();
            report.insert("needed_modules".into(), Value::Array(modules));
        }
    }
    if parts.constructors {
        let callbacks = module.tls_callbacks();
        for (key, list) in [
            ("constructors", module.init_array()),
            ("destructors", module.fini_array()),
            ("tls_callbacks", callbacks),
        ] {
            if key == "tls_callbacks" && callbacks.is_empty() {
                continue;
            }
            let list = list.iter().map(|&offset| {
                let (symbol, symbol_offset) = symbol_at(offset);
                json!({ "offset": offset, "symbol": symbol, "symbol_offset": symbol_offset })
            });
            report.insert(key.into(), Value::Array(list.collect()));
        }
    }
    if parts.types && (parts != Parts::ALL || !module.types().is_empty()) {
        // Every type of the table by id: its text, and a struct's or union's layout.
        let types = module.types();
        let list = (1..=types.len()).map(|id| {
            json!({ "id": id, "type": types.display(id), "layout": types.describe_record(id) })
        });
        report.insert("types".into(), Value::Array(list.collect()));
    }
    Value::Object(report)
}

/// The symbols that lie in a section, sorted by address once, so that naming the symbol at
/// an address does not scan the whole table (a report names one per relocation).
struct SymbolsByAddress<'data> {
    /// By value, then by position in the table.
    sorted: Vec<Symbol<'data>>,
    /// `reach[i]`: the largest end (value + size) of `sorted[..=i]`, so that a search going
    /// down from an address stops where no lower symbol can reach it.
    reach: Vec<u64>,
}

impl<'data> SymbolsByAddress<'data> {
    fn new(module: &Module<'data>) -> Self {
        let mut sorted: Vec<Symbol<'data>> = module
            .symbols()
            .valid()
            .map(|(_, s)| s)
            .filter(|s| s.section.is_some())
            .collect();
        // Stable: equal values keep table order, which breaks ties below as before.
        sorted.sort_by_key(|s| s.value);
        let reach = sorted
            .iter()
            .scan(0u64, |reach, s| {
                *reach = (*reach).max(s.value.saturating_add(s.size));
                Some(*reach)
            })
            .collect();
        SymbolsByAddress { sorted, reach }
    }

    /// The symbol holding `offset` (or starting there) that starts closest below it, an
    /// exported one first among those at one address, else the first in the table.
    fn at(&self, offset: u64) -> Option<&Symbol<'data>> {
        let holds = |s: &Symbol<'_>| offset < s.value.saturating_add(s.size) || offset == s.value;
        let above = self.sorted.partition_point(|s| s.value <= offset);
        let mut best: Option<&Symbol<'_>> = None;
        for i in (0..above).rev() {
            let s = &self.sorted[i];
            match best {
                // Every symbol below starts further from `offset`.
                Some(b) if s.value != b.value => break,
                // Going down, an equal one comes earlier in the table: it wins the tie.
                Some(b) => {
                    if holds(s) && !s.is_exported() <= !b.is_exported() {
                        best = Some(s);
                    }
                }
                None if holds(s) => best = Some(s),
                // None of `sorted[..=i]` reaches `offset`.
                None if self.reach[i] <= offset => break,
                None => {}
            }
        }
        best
    }
}

/// ` <name+off>` for an image offset that falls inside a code or data symbol, else empty.
fn symbol_suffix(module: &Module<'_>, symbols: &SymbolsByAddress<'_>, offset: u64) -> String {
    let Some(section) = module.section_at(offset) else {
        return String::new();
    };
    if section.kind == SectionKind::Bss && offset == section.vaddr + section.mem_size {
        return String::new();
    }
    symbols
        .at(offset)
        .map(|s| {
            if offset == s.value {
                format!(" <{}>", s.name)
            } else {
                format!(" <{}+{:#x}>", s.name, offset - s.value)
            }
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Binding, LoadedSection, ModuleBuilder, SymbolKind, Visibility};

    /// The index names the same symbol as a scan of the whole table would, for every
    /// address: nested symbols, equal addresses, exported ones first, empty ones.
    #[test]
    fn symbols_by_address_agree_with_a_full_scan() {
        let code = vec![0xcc; 0x300];
        let mut builder = ModuleBuilder::new();
        let section = builder.add_section(LoadedSection {
            kind: SectionKind::Code,
            name: ".text",
            vaddr: 0,
            mem_size: 0x300,
            align: 16,
            data: code,
        });
        let symbols = [
            ("outer", 0x100, 0x100, Binding::Global),
            ("inner_local", 0x150, 0x10, Binding::Local),
            ("inner_alias_local", 0x150, 0x40, Binding::Local),
            ("inner_alias", 0x150, 0x40, Binding::Global),
            ("inner_alias_second", 0x150, 0x40, Binding::Global),
            ("label", 0x1f0, 0, Binding::Local),
            ("small", 0x10, 0x8, Binding::Local),
            ("huge_first", 0x0, 0x280, Binding::Local),
            ("tail", 0x2f8, 0x8, Binding::Global),
        ];
        for (name, value, size, binding) in symbols {
            builder.add_symbol(crate::Symbol {
                name,
                kind: SymbolKind::Function,
                binding,
                visibility: Visibility::Default,
                section: Some(section),
                value,
                size,
                type_id: 0,
                version: 1,
            });
        }
        let bytes = builder.write().unwrap();
        let module = Module::parse(&bytes).unwrap();
        let index = SymbolsByAddress::new(&module);
        for offset in 0..0x310u64 {
            let scan = module
                .symbols()
                .to_vec()
                .unwrap()
                .into_iter()
                .filter(|s| {
                    s.section.is_some()
                        && s.value <= offset
                        && (offset < s.value + s.size || offset == s.value)
                })
                .min_by_key(|s| (offset - s.value, !s.is_exported()))
                .map(|s| s.name);
            assert_eq!(index.at(offset).map(|s| s.name), scan, "at {offset:#x}");
        }
        assert_eq!(index.at(0x160).map(|s| s.name), Some("inner_alias"));
        assert_eq!(index.at(0x1a0).map(|s| s.name), Some("outer"));
        assert_eq!(index.at(0x290).map(|s| s.name), None);
    }
}
