//! Addresses to names: which loaded module, which function, how far into it.
//!
//! Every module the loader maps is listed, process-wide, with its functions sorted by
//! address, from load until its image is unmapped (see `crate::runtime`). [`symbolize`]
//! answers for any address in any module, whichever registry or host loaded it; the crash
//! handler uses the same list without allocating. A module with a source map (`srcmap`,
//! from `-g` objects) also says which source line an address came from.

use std::sync::{Arc, OnceLock};

use smf_format::{Binding, SectionKind, SourceMap, Symbol, SymbolKind};

use crate::module::ParsedFile;

/// Where an address lies: the module, and the function containing it if the symbol table
/// names one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The module's name: the path it was loaded from, or `<memory>`.
    pub module: String,
    /// The address of the module's image.
    pub module_base: usize,
    /// The function containing the address, if any.
    pub symbol: Option<String>,
    /// Start of that function (the module base when there is none).
    pub symbol_address: usize,
    /// `address - symbol_address`.
    pub offset: usize,
    /// The source the code at the address came from, if the module has a source map that
    /// covers it.
    pub source: Option<SourceLine>,
}

/// A place in a source file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceLine {
    /// The file, as the compiler named it (normally a full path).
    pub file: String,
    /// 1-based.
    pub line: u32,
    /// 1-based, or 0 when unknown.
    pub column: u32,
}

impl std::fmt::Display for SourceLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)?;
        if self.column != 0 {
            write!(f, ":{}", self.column)?;
        }
        Ok(())
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.symbol {
            Some(symbol) => write!(f, "{symbol}+{:#x} in {}", self.offset, self.module)?,
            None => write!(f, "{}+{:#x}", self.module, self.offset)?,
        }
        if let Some(source) = &self.source {
            write!(f, " at {source}")?;
        }
        Ok(())
    }
}

/// Finds the loaded module and function containing `address`, and its source line when the
/// module has a source map. For a return address, ask for the address before it (the call).
pub fn symbolize(address: usize) -> Option<Location> {
    crate::runtime::with_symbols(address, |symbols| {
        symbols.functions();
        symbols.checked_source_map();
        let (symbol, start) = match symbols.function_at(address) {
            Some(function) => (Some(symbols.name_of(&function).to_owned()), function.start),
            None => (None, symbols.base),
        };
        Location {
            module: symbols.module.clone(),
            module_base: symbols.base,
            symbol,
            symbol_address: start,
            offset: address - start,
            source: symbols.source_at(address).map(|l| SourceLine {
                file: l.file.to_owned(),
                line: l.line,
                column: l.column,
            }),
        }
    })
}

/// One function of a module: its run-time address range and its symbol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Function {
    pub start: usize,
    pub end: usize,
    /// Index in the module's symbol table, which holds the name.
    symbol: u32,
}

/// What the symbolizer knows of one mapped module: its place and its code sections. Its
/// functions, sorted by address, are listed the first time something asks for them
/// ([`ModuleSymbols::functions`]: `symbolize`, the debugger's object, the perf map), not at
/// load: most loads never need them. Until then, [`ModuleSymbols::function_at`] finds a
/// function by reading the module's symbol table, without allocating, as the crash handler
/// must. Names are read from the module's parsed symbol table, which this keeps alive.
#[derive(Debug)]
pub(crate) struct ModuleSymbols {
    pub module: String,
    pub base: usize,
    pub len: usize,
    /// Run-time ranges of the code sections.
    pub code: Vec<(usize, usize)>,
    functions: OnceLock<Vec<Function>>,
    /// Whether the module's source map (`srcmap`) passed its validation: set the first time
    /// something that may allocate needs it ([`ModuleSymbols::checked_source_map`]), not at
    /// load. The crash handler, which cannot validate a table, reads the map only once this
    /// says it is valid.
    source_checked: OnceLock<bool>,
    file: Arc<ParsedFile>,
}

impl ModuleSymbols {
    pub(crate) fn new(file: &Arc<ParsedFile>, base: usize, len: usize, module: &str) -> Self {
        let parsed = file.borrow_dependent();
        let code: Vec<(usize, usize)> = parsed
            .loaded_sections()
            .filter(|s| s.kind == SectionKind::Code && s.mem_size > 0)
            .map(|s| {
                (
                    base + s.vaddr as usize,
                    base + (s.vaddr + s.mem_size) as usize,
                )
            })
            .collect();
        ModuleSymbols {
            module: module.to_owned(),
            base,
            len,
            code,
            functions: OnceLock::new(),
            source_checked: OnceLock::new(),
            file: Arc::clone(file),
        }
    }

    /// The order functions are chosen in at one address: by address, exported names first
    /// (so an alias is named by its public name), then symbol-table order.
    fn key(symbol: &Symbol<'_>, index: u32) -> (u64, bool, u32) {
        (symbol.value, symbol.binding == Binding::Local, index)
    }

    /// The module's functions by address, one per address; listed on the first call.
    pub(crate) fn functions(&self) -> &[Function] {
        self.functions.get_or_init(|| self.list_functions())
    }

    fn list_functions(&self) -> Vec<Function> {
        // The packer writes the table in key order, so usually noting that it is sorted, in
        // the pass that collects the functions, is all; other tables get their functions
        // sorted.
        // Entries that do not decode (local ones, which a load does not check) are skipped:
        // a function without a valid entry is reported without a name.
        let symbols = self.file.borrow_dependent().symbols();
        let key = |i: u32| match symbols.get(i as usize) {
            Some(Ok(symbol)) => Self::key(&symbol, i),
            _ => (u64::MAX, true, i),
        };
        let mut functions: Vec<Function> = Vec::new();
        let (mut sorted, mut sizeless) = (true, false);
        let mut last = None;
        for (i, symbol) in symbols.valid() {
            if symbol.kind != SymbolKind::Function || symbol.section.is_none() {
                continue;
            }
            let i = i as u32;
            let this = Self::key(&symbol, i);
            sorted &= last.is_none_or(|last| last <= this);
            last = Some(this);
            sizeless |= symbol.size == 0;
            let start = self.base + symbol.value as usize;
            functions.push(Function {
                start,
                end: start + symbol.size as usize,
                symbol: i,
            });
        }
        if !sorted {
            functions.sort_by_cached_key(|f| key(f.symbol));
        }
        functions.dedup_by_key(|f| f.start);
        // A symbol without a size extends to the next one or the end of its section.
        if sizeless {
            for n in 0..functions.len() {
                if functions[n].end > functions[n].start {
                    continue;
                }
                let next = functions.get(n + 1).map(|next| next.start);
                functions[n].end = self.sizeless_end(functions[n].start, next);
            }
        }
        functions.shrink_to_fit();
        functions
    }

    /// Where a function of no size at `start` ends: at the next function's start (`next`)
    /// or its code section's end, whichever comes first.
    fn sizeless_end(&self, start: usize, next: Option<usize>) -> usize {
        let section_end = self
            .code
            .iter()
            .find(|(s, e)| (*s..*e).contains(&start))
            .map_or(start, |&(_, e)| e);
        next.map_or(section_end, |next| next.min(section_end))
            .max(start)
    }

    /// At most the bytes the functions' names take with their terminators, unless names share
    /// bytes in the module's string table: the table's size.
    pub(crate) fn names_len_bound(&self) -> usize {
        self.file
            .borrow_dependent()
            .table_section(SectionKind::StrTab)
            .map_or(0, |s| s.data.len())
    }

    /// The module's source map, if it has one and it was found valid: validated on the first
    /// call (the whole table is read once, so a load that never asks pays nothing for it).
    /// A table that is not valid is never read, and gives no source lines.
    pub(crate) fn checked_source_map(&self) -> Option<SourceMap<'_>> {
        let parsed = self.file.borrow_dependent();
        parsed.table_section(SectionKind::SrcMap)?;
        let valid = *self
            .source_checked
            .get_or_init(|| parsed.source_map().is_ok());
        valid.then(|| self.source_map_view()).flatten()
    }

    /// Records that the module's source map was validated already (by the load, which
    /// refused the module had it not been).
    pub(crate) fn source_map_was_checked(&self) {
        let _ = self.source_checked.set(true);
    }

    /// The module's source map if it was validated, without validating it. Allocates
    /// nothing, takes no lock: the crash handler reads it.
    fn source_map_view(&self) -> Option<SourceMap<'_>> {
        let table = self
            .file
            .borrow_dependent()
            .table_section(SectionKind::SrcMap)?;
        SourceMap::view(table.data)
    }

    /// The source of the code at run-time `address`, from a source map validated before
    /// (none otherwise). Allocates nothing, takes no lock, validates nothing: the crash
    /// handler calls it. Call [`ModuleSymbols::checked_source_map`] first where allocating is
    /// allowed.
    pub(crate) fn source_at(&self, address: usize) -> Option<smf_format::SourceLocation<'_>> {
        let offset = address.checked_sub(self.base)?;
        if self.source_checked.get() != Some(&true) {
            return None;
        }
        self.source_map_view()?.lookup(offset as u64)
    }

    pub(crate) fn name_of(&self, function: &Function) -> &str {
        let symbols = self.file.borrow_dependent().symbols();
        symbols
            .get(function.symbol as usize)
            .and_then(Result::ok)
            .map_or("?", |s| s.name)
    }

    /// The function whose range contains `address`: from the list if it was made, otherwise
    /// by two passes over the symbol table that choose as the list would. Allocates nothing,
    /// takes no lock: the crash handler calls it.
    pub(crate) fn function_at(&self, address: usize) -> Option<Function> {
        if let Some(functions) = self.functions.get() {
            let after = functions.partition_point(|f| f.start <= address);
            let function = *functions.get(after.checked_sub(1)?)?;
            return (address < function.end || function.start == address).then_some(function);
        }
        let offset = address.checked_sub(self.base)? as u64;
        let symbols = self.file.borrow_dependent().symbols();
        let is_function = |s: &Symbol<'_>| s.kind == SymbolKind::Function && s.section.is_some();
        // The last function starting at or before the address, as the list would keep it.
        // `valid` makes no error message for a broken entry: nothing here allocates.
        let (index, symbol) = symbols
            .valid()
            .filter(|(_, s)| is_function(s) && s.value <= offset)
            .min_by_key(|(i, s)| {
                let (value, local, index) = Self::key(s, *i as u32);
                (std::cmp::Reverse(value), local, index)
            })?;
        let start = self.base + symbol.value as usize;
        let end = if symbol.size > 0 {
            start + symbol.size as usize
        } else {
            let next = symbols
                .valid()
                .filter(|(_, s)| is_function(s) && s.value > symbol.value)
                .map(|(_, s)| self.base + s.value as usize)
                .min();
            self.sizeless_end(start, next)
        };
        let function = Function {
            start,
            end,
            symbol: index as u32,
        };
        (address < function.end || function.start == address).then_some(function)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smf_format::{LoadedSection, ModuleBuilder, Symbol, Visibility};

    fn function(name: &str, binding: Binding, value: u64, size: u64) -> Symbol<'_> {
        Symbol {
            name,
            kind: SymbolKind::Function,
            binding,
            visibility: Visibility::Default,
            section: Some(0),
            value,
            size,
            type_id: 0,
            version: 0,
        }
    }

    #[test]
    fn functions_are_found_by_range_with_sizes_inferred_and_aliases_named_publicly() {
        // The alias first leaves the table out of order (the public name sorts first at
        // an address); the public name first leaves it in order.
        for alias_first in [true, false] {
            check_functions(alias_first);
        }
    }

    fn check_functions(alias_first: bool) {
        let mut builder = ModuleBuilder::new();
        builder.add_section(LoadedSection {
            kind: SectionKind::Code,
            name: ".text",
            vaddr: 0,
            mem_size: 0x100,
            align: 16,
            data: vec![0xcc; 0x100],
        });
        builder.add_symbol(function("sized", Binding::Global, 0x10, 0x10));
        builder.add_symbol(function("sizeless", Binding::Local, 0x40, 0));
        let alias = function("local_alias", Binding::Local, 0x80, 8);
        let public = function("public_name", Binding::Global, 0x80, 8);
        let (first, second) = if alias_first {
            (alias, public)
        } else {
            (public, alias)
        };
        builder.add_symbol(first);
        builder.add_symbol(second);
        builder.add_symbol(function("last", Binding::Local, 0xc0, 0));
        let bytes = builder.write().unwrap();
        let parsed = crate::module::parse_owned(bytes);
        let base = 0x7000_0000;
        let symbols = ModuleSymbols::new(&parsed, base, 0x1000, "m.smf");
        // First by reading the symbol table (nothing is listed at load), then from the list.
        assert!(
            symbols.functions.get().is_none(),
            "listed before it was asked for"
        );
        check_names(&symbols, base);
        let scanned: Vec<_> = (0..0x110).map(|o| symbols.function_at(base + o)).collect();
        assert_eq!(symbols.functions().len(), 4, "one function per address");
        check_names(&symbols, base);
        let listed: Vec<_> = (0..0x110).map(|o| symbols.function_at(base + o)).collect();
        assert_eq!(scanned, listed, "the scan and the list disagree");
        assert_eq!(symbols.code, [(base, base + 0x100)]);
    }

    #[test]
    fn a_broken_local_entry_is_skipped() {
        let mut builder = ModuleBuilder::new();
        builder.add_section(LoadedSection {
            kind: SectionKind::Code,
            name: ".text",
            vaddr: 0,
            mem_size: 0x100,
            align: 16,
            data: vec![0xcc; 0x100],
        });
        builder.add_symbol(function("first", Binding::Global, 0x10, 0x10));
        builder.add_symbol(function("broken", Binding::Local, 0x40, 0x10));
        builder.add_symbol(function("last", Binding::Local, 0x80, 0));
        let mut bytes = builder.write().unwrap();
        let file = smf_format::Module::parse(&bytes).unwrap();
        let (index, _) = file
            .symbols()
            .valid()
            .find(|(_, s)| s.name == "broken")
            .unwrap();
        let table = file.table_section(SectionKind::SymTab).unwrap().file_offset as usize;
        drop(file);
        // The reserved flags byte: the entry no longer decodes; a load does not read it.
        bytes[table + index * size_of::<smf_format::raw::Symbol>() + 11] = 1;
        let parsed = crate::module::parse_owned(bytes);
        assert!(parsed.borrow_dependent().symbol(index).unwrap().is_err());
        let base = 0x7000_0000;
        let symbols = ModuleSymbols::new(&parsed, base, 0x1000, "m.smf");
        let name = |offset: usize| {
            symbols
                .function_at(base + offset)
                .map(|f| symbols.name_of(&f).to_owned())
        };
        for _ in 0..2 {
            // Scanned, then listed.
            assert_eq!(name(0x10).as_deref(), Some("first"));
            assert_eq!(name(0x40), None, "the broken entry names nothing");
            assert_eq!(name(0x90).as_deref(), Some("last"));
            assert_eq!(symbols.functions().len(), 2);
        }
    }

    /// A module with code at 0..0x100 whose source map gives offset 0x10 the line `f.c:7`,
    /// its last row at `end`.
    fn with_source_map(end: u64) -> Vec<u8> {
        let mut builder = ModuleBuilder::new();
        builder.add_section(LoadedSection {
            kind: SectionKind::Code,
            name: ".text",
            vaddr: 0,
            mem_size: 0x100,
            align: 16,
            data: vec![0xcc; 0x100],
        });
        builder
            .set_opaque(SectionKind::SrcMap, source_map_table(end))
            .unwrap();
        builder.write().unwrap()
    }

    /// A `srcmap` table giving offset 0x10 the line `f.c:7`, its last row at `end`.
    fn source_map_table(end: u64) -> Vec<u8> {
        let mut map = smf_format::SourceMapBuilder::new();
        let file = map.file("f.c");
        map.add_sequence(&[(0x10, file, 7, 0)], end);
        map.encode().unwrap()
    }

    #[test]
    fn the_crash_handler_reads_only_a_source_map_validated_before() {
        let base = 0x7000_0000;
        let good = crate::module::parse_owned(with_source_map(0x800));
        let symbols = ModuleSymbols::new(&good, base, 0x1000, "m.smf");
        assert_eq!(
            symbols.source_at(base + 0x10).map(|l| l.line),
            None,
            "read before it was validated"
        );
        assert!(symbols.checked_source_map().is_some());
        assert_eq!(symbols.source_at(base + 0x10).map(|l| l.line), Some(7));

        // The same table with its end row moved past the image (the writer refuses that,
        // so the bytes are patched): the unchecked view would still answer.
        let mut bytes = with_source_map(0x800);
        let moved = source_map_table(0x3000);
        let table = {
            let parsed = smf_format::Module::parse(&bytes).unwrap();
            let section = parsed.table_section(SectionKind::SrcMap).unwrap();
            assert_eq!(section.data.len(), moved.len());
            section.file_offset as usize
        };
        bytes[table..table + moved.len()].copy_from_slice(&moved);
        let broken = crate::module::parse_owned(bytes);
        let view = SourceMap::view(
            broken
                .borrow_dependent()
                .table_section(SectionKind::SrcMap)
                .unwrap()
                .data,
        )
        .unwrap();
        assert_eq!(
            view.lookup(0x10).map(|l| l.line),
            Some(7),
            "unchecked, it answers"
        );
        let symbols = ModuleSymbols::new(&broken, base, 0x1000, "m.smf");
        assert!(
            symbols.checked_source_map().is_none(),
            "validation refuses it"
        );
        assert_eq!(symbols.source_at(base + 0x10).map(|l| l.line), None);
    }

    fn check_names(symbols: &ModuleSymbols, base: usize) {
        let name = |offset: usize| {
            symbols
                .function_at(base + offset)
                .map(|f| symbols.name_of(&f).to_owned())
        };
        assert_eq!(name(0x0f), None, "before the first function");
        assert_eq!(name(0x10), Some(String::from("sized")));
        assert_eq!(name(0x1f), Some(String::from("sized")));
        assert_eq!(name(0x20), None, "past the end of a sized function");
        assert_eq!(
            name(0x7f),
            Some(String::from("sizeless")),
            "a size-0 symbol runs to the next one"
        );
        assert_eq!(name(0x80), Some(String::from("public_name")));
        assert_eq!(
            name(0xff),
            Some(String::from("last")),
            "the last one runs to the end of its section"
        );
        assert_eq!(name(0x100), None);
    }
}
