//! Writing an [`SmfModule`] as an SMF module: the image layout, relocations resolved as
//! `smf pack` resolves them, the GOT and import stubs, `.eh_frame` (for Windows, `.pdata` and
//! its `UNWIND_INFO` in `.rodata`), symbols and imports.
//!
//! The image, in order, each part on its own pages and present only if not empty:
//! `.text` (functions, then one stub per called import), `.rodata`, `.eh_frame` or `.pdata`,
//! `.data.rel.ro` (read-only data holding pointers, then the GOT, then TLS pairs, then TLS
//! descriptors), `.data`,
//! `.bss`, `.tls` (initialised thread-locals, then zeroed ones).

use std::collections::HashMap;

use cranelift_codegen::binemit::Reloc;
use cranelift_module::{
    DataId, FuncId, Linkage, ModuleDeclarations, ModuleReloc, ModuleRelocTarget,
};
use gimli::write::{Address, EhFrame, EndianVec, FrameTable};
use smf_format::{
    Binding, ImageLayout, Import, ImportKind, LoadedSection, ModuleBuilder, ModuleFlags, RelocKind,
    SectionKind, Symbol, SymbolKind, Visibility,
};

use cranelift_codegen::isa::unwind::UnwindInfo;

use crate::arch::{ArchTable, Via};
use crate::{EmitError, SmfModule};

/// The loaded sections, in image order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Home {
    Text,
    Rodata,
    EhFrame,
    Pdata,
    Relro,
    Data,
    Bss,
    Tls,
}

const HOMES: [(Home, SectionKind, &str); 8] = [
    (Home::Text, SectionKind::Code, ".text"),
    (Home::Rodata, SectionKind::RoData, ".rodata"),
    (Home::EhFrame, SectionKind::EhFrame, ".eh_frame"),
    (Home::Pdata, SectionKind::Pdata, ".pdata"),
    (Home::Relro, SectionKind::RelRo, ".data.rel.ro"),
    (Home::Data, SectionKind::Data, ".data"),
    (Home::Bss, SectionKind::Bss, ".bss"),
    (Home::Tls, SectionKind::Tls, ".tls"),
];

/// A section being filled: its bytes (for bss and the zero tail of tls, only a size) and
/// alignment.
#[derive(Default)]
struct Contents {
    bytes: Vec<u8>,
    size: u64,
    align: u64,
}

impl Contents {
    /// Appends `size` bytes aligned to `align` (zeros if `bytes` is `None`), returning their
    /// offset in the section.
    fn append(&mut self, bytes: Option<&[u8]>, size: u64, align: u64) -> u64 {
        let offset = self.size.next_multiple_of(align.max(1));
        self.align = self.align.max(align).max(1);
        self.size = offset + size;
        if let Some(bytes) = bytes {
            self.bytes.resize(offset as usize, 0);
            self.bytes.extend_from_slice(bytes);
        }
        offset
    }

    /// The file bytes, zero-extended to everything but a trailing zero tail.
    fn filled(&mut self) -> &mut Vec<u8> {
        &mut self.bytes
    }
}

/// What a relocation points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Target {
    /// A function of the module, at an offset in it (a label, or 0).
    Func(FuncId, u32),
    /// A data object of the module.
    Data(DataId),
    /// An entry of the import table.
    Import(u32),
}

struct Emitter<'m> {
    module: &'m SmfModule,
    table: &'static ArchTable,
    decls: &'m ModuleDeclarations,
    /// Where each defined function and data object is: section and offset in it.
    func_at: HashMap<FuncId, u64>,
    data_at: HashMap<DataId, (Home, u64)>,
    imports: Vec<(String, ImportKind, Binding)>,
    import_index: HashMap<String, u32>,
    /// Import index → offset of its stub after the functions.
    stubs: HashMap<u32, u64>,
    stub_order: Vec<u32>,
    /// GOT slots by target, offset in the GOT.
    got: HashMap<Target, u64>,
    got_order: Vec<Target>,
    /// General-dynamic TLS pairs by thread-local.
    tls_pairs: HashMap<DataId, u64>,
    tls_order: Vec<DataId>,
    /// TLS descriptors by thread-local.
    tls_descriptors: HashMap<DataId, u64>,
    descriptor_order: Vec<DataId>,
}

pub(crate) fn emit(module: &SmfModule) -> Result<Vec<u8>, EmitError> {
    let mut e = Emitter {
        module,
        table: module.builder.table,
        decls: &module.declarations,
        func_at: HashMap::new(),
        data_at: HashMap::new(),
        imports: Vec::new(),
        import_index: HashMap::new(),
        stubs: HashMap::new(),
        stub_order: Vec::new(),
        got: HashMap::new(),
        got_order: Vec::new(),
        tls_pairs: HashMap::new(),
        tls_order: Vec::new(),
        tls_descriptors: HashMap::new(),
        descriptor_order: Vec::new(),
    };
    e.write()
}

/// The function type of a Cranelift signature, if the format can say it: parameters and at
/// most one result of integer or float types, in the platform's C convention or `tail`.
/// Cranelift's integers have no signedness: one is recorded unsigned if the parameter is
/// zero-extended (`uext`), signed otherwise. Pointers are integers to Cranelift, and are
/// recorded as such.
fn signature_type(
    types: &mut smf_format::typeinfo::TypeTableBuilder,
    signature: &cranelift_codegen::ir::Signature,
) -> Option<u32> {
    use cranelift_codegen::ir::{ArgumentExtension, ArgumentPurpose, types as ty};
    use cranelift_codegen::isa::CallConv as Conv;
    use smf_format::typeinfo::CallConv;
    let conv = match signature.call_conv {
        Conv::SystemV | Conv::AppleAarch64 => CallConv::C,
        Conv::Tail => CallConv::Tail,
        _ => return None,
    };
    let mut one = |param: &cranelift_codegen::ir::AbiParam| -> Option<u32> {
        if param.purpose != ArgumentPurpose::Normal {
            return None;
        }
        let signed = param.extension != ArgumentExtension::Uext;
        Some(match param.value_type {
            ty::I8 => types.int(1, signed),
            ty::I16 => types.int(2, signed),
            ty::I32 => types.int(4, signed),
            ty::I64 => types.int(8, signed),
            ty::I128 => types.int(16, signed),
            ty::F32 => types.float(4),
            ty::F64 => types.float(8),
            _ => return None,
        })
    };
    let params = signature
        .params
        .iter()
        .map(&mut one)
        .collect::<Option<Vec<u32>>>()?;
    let result = match signature.returns.as_slice() {
        [] => 0,
        [r] => one(r)?,
        _ => return None,
    };
    Some(types.function(conv, result, &params, false))
}

fn func_name(decls: &ModuleDeclarations, id: FuncId) -> String {
    decls.get_function_decl(id).linkage_name(id).into_owned()
}

fn data_name(decls: &ModuleDeclarations, id: DataId) -> String {
    decls.get_data_decl(id).linkage_name(id).into_owned()
}

fn reloc_name(kind: Reloc) -> String {
    format!("{kind:?}")
}

impl Emitter<'_> {
    fn target_name(&self, target: Target) -> String {
        match target {
            Target::Func(id, 0) => func_name(self.decls, id),
            Target::Func(id, offset) => format!("{}+{offset:#x}", func_name(self.decls, id)),
            Target::Data(id) => data_name(self.decls, id),
            Target::Import(i) => self.imports[i as usize].0.clone(),
        }
    }

    fn import(&mut self, name: String, kind: ImportKind, binding: Binding) -> u32 {
        if let Some(&index) = self.import_index.get(&name) {
            return index;
        }
        let index = self.imports.len() as u32;
        self.import_index.insert(name.clone(), index);
        self.imports.push((name, kind, binding));
        index
    }

    /// What `name` (a relocation's target, in `place`) refers to; an undefined function or
    /// data object becomes an import.
    fn resolve(
        &mut self,
        name: &ModuleRelocTarget,
        place: &str,
        kind: Reloc,
    ) -> Result<Target, EmitError> {
        let unsupported = |why: &str| EmitError::Unsupported {
            place: place.to_owned(),
            reloc: reloc_name(kind),
            target: name.to_string(),
            why: why.to_owned(),
        };
        match *name {
            ModuleRelocTarget::User { .. } if ModuleDeclarations::is_function(name) => {
                let id = FuncId::from_name(name);
                if self.module.functions.contains_key(&id) {
                    return Ok(Target::Func(id, 0));
                }
                let decl = self.decls.get_function_decl(id);
                let binding = match decl.linkage {
                    Linkage::Import => Binding::Global,
                    Linkage::Preemptible => Binding::Weak,
                    _ => {
                        return Err(EmitError::Undefined {
                            name: func_name(self.decls, id),
                            kind: "function",
                        });
                    }
                };
                Ok(Target::Import(self.import(
                    func_name(self.decls, id),
                    ImportKind::Function,
                    binding,
                )))
            }
            ModuleRelocTarget::User { .. } => {
                let id = DataId::from_name(name);
                if self.module.data.contains_key(&id) {
                    return Ok(Target::Data(id));
                }
                let decl = self.decls.get_data_decl(id);
                if decl.tls {
                    return Err(unsupported(
                        "a thread-local of another module cannot be reached; define it in this one",
                    ));
                }
                let binding = match decl.linkage {
                    Linkage::Import => Binding::Global,
                    Linkage::Preemptible => Binding::Weak,
                    _ => {
                        return Err(EmitError::Undefined {
                            name: data_name(self.decls, id),
                            kind: "data object",
                        });
                    }
                };
                Ok(Target::Import(self.import(
                    data_name(self.decls, id),
                    ImportKind::Data,
                    binding,
                )))
            }
            ModuleRelocTarget::LibCall(libcall) => {
                let symbol = (self.module.builder.libcall_names)(libcall);
                // A library call the module defines itself binds to that definition.
                if let Some(cranelift_module::FuncOrDataId::Func(id)) = self.decls.get_name(&symbol)
                    && self.module.functions.contains_key(&id)
                {
                    return Ok(Target::Func(id, 0));
                }
                Ok(Target::Import(self.import(
                    symbol,
                    ImportKind::Function,
                    Binding::Global,
                )))
            }
            ModuleRelocTarget::FunctionOffset(id, offset) => Ok(Target::Func(id, offset)),
            ModuleRelocTarget::KnownSymbol(_) => Err(unsupported(
                "linker-defined symbols do not exist in SMF modules",
            )),
        }
    }

    fn is_tls(&self, target: Target) -> bool {
        matches!(target, Target::Data(id) if self.decls.get_data_decl(id).tls)
    }

    fn write(&mut self) -> Result<Vec<u8>, EmitError> {
        let decls = self.decls;
        let module = self.module;
        let mut sections: HashMap<Home, Contents> = HashMap::new();

        // Functions, in declaration order.
        for (id, decl) in decls.get_functions() {
            match module.functions.get(&id) {
                Some(body) => {
                    let text = sections.entry(Home::Text).or_default();
                    let align = body.align.max(module.builder.isa.symbol_alignment());
                    let offset = text.append(Some(&body.bytes), body.bytes.len() as u64, align);
                    self.func_at.insert(id, offset);
                }
                None if decl.linkage.requires_definition() => {
                    return Err(EmitError::Undefined {
                        name: func_name(decls, id),
                        kind: "function",
                    });
                }
                None => {}
            }
        }
        // Data: thread-locals with contents before zeroed ones, so the template is one run of
        // bytes and a zero tail.
        let mut zero_tls = Vec::new();
        for (id, decl) in decls.get_data_objects() {
            let Some(body) = module.data.get(&id) else {
                if decl.linkage.requires_definition() {
                    return Err(EmitError::Undefined {
                        name: data_name(decls, id),
                        kind: "data object",
                    });
                }
                continue;
            };
            let has_pointers = !body.relocs.is_empty();
            let zeros = body.bytes.is_none() && !has_pointers;
            let home = if decl.tls {
                if zeros {
                    zero_tls.push(id);
                    continue;
                }
                Home::Tls
            } else if decl.writable {
                if zeros { Home::Bss } else { Home::Data }
            } else if has_pointers {
                Home::Relro
            } else {
                Home::Rodata
            };
            let zero_bytes;
            let bytes = match &body.bytes {
                Some(b) => Some(b.as_slice()),
                None if home == Home::Bss => None,
                None => {
                    zero_bytes = vec![0u8; body.size as usize];
                    Some(zero_bytes.as_slice())
                }
            };
            let offset = sections
                .entry(home)
                .or_default()
                .append(bytes, body.size, body.align);
            self.data_at.insert(id, (home, offset));
        }
        for id in zero_tls {
            let body = module.data.get(&id).expect("listed because defined");
            let offset = sections
                .entry(Home::Tls)
                .or_default()
                .append(None, body.size, body.align);
            self.data_at.insert(id, (Home::Tls, offset));
        }

        // What the code's relocations need: stubs, GOT slots, TLS pairs and descriptors.
        let mut code_relocs = Vec::new();
        for (id, _) in decls.get_functions() {
            let Some(body) = module.functions.get(&id) else {
                continue;
            };
            let place = func_name(decls, id);
            for r in &body.relocs {
                let target = self.resolve(&r.name, &place, r.kind)?;
                if u64::from(r.offset) + 4 > body.bytes.len() as u64 {
                    let why = format!(
                        "offset {:#x} is past the end of the function's {} bytes",
                        r.offset,
                        body.bytes.len()
                    );
                    return Err(self.unsupported(&place, r, target, &why));
                }
                let via = (self.table.classify)(r.kind).ok_or_else(|| EmitError::Unsupported {
                    place: place.clone(),
                    reloc: reloc_name(r.kind),
                    target: self.target_name(target),
                    why: format!("not a relocation of {} code in SMF", self.table.arch),
                })?;
                match (via, target) {
                    (Via::Branch, Target::Import(i)) if !self.stubs.contains_key(&i) => {
                        self.stubs.insert(i, 0);
                        self.stub_order.push(i);
                    }
                    (Via::Branch, Target::Import(_)) => {}
                    (Via::Got | Via::Branch, _) if self.is_tls(target) => {
                        return Err(self.unsupported(
                            &place,
                            r,
                            target,
                            "a thread-local is reached through its TLS pair, not its address",
                        ));
                    }
                    (Via::Got, _) if !self.got.contains_key(&target) => {
                        self.got.insert(target, 0);
                        self.got_order.push(target);
                    }
                    (Via::TlsGd, Target::Data(d)) if self.is_tls(target) => {
                        if let std::collections::hash_map::Entry::Vacant(e) =
                            self.tls_pairs.entry(d)
                        {
                            e.insert(0);
                            self.tls_order.push(d);
                        }
                    }
                    (Via::TlsDescriptor, Target::Data(d)) if self.is_tls(target) => {
                        if let std::collections::hash_map::Entry::Vacant(e) =
                            self.tls_descriptors.entry(d)
                        {
                            e.insert(0);
                            self.descriptor_order.push(d);
                        }
                    }
                    (Via::TlsGd | Via::TlsDescriptor, _) => {
                        return Err(self.unsupported(
                            &place,
                            r,
                            target,
                            "not a thread-local of this module",
                        ));
                    }
                    (Via::Direct, Target::Import(_)) => {
                        return Err(self.unsupported(&place, r, target, "an import is reached through the GOT or a stub, never directly: declare it with Linkage::Import (not colocated)"));
                    }
                    (Via::Direct, _) if self.is_tls(target) => {
                        return Err(self.unsupported(
                            &place,
                            r,
                            target,
                            "a thread-local has no fixed address",
                        ));
                    }
                    _ => {}
                }
                code_relocs.push((id, r, via, target));
            }
        }
        // Stubs after the functions, GOT, TLS pairs and descriptors after read-only pointer
        // data.
        {
            let text = sections.entry(Home::Text).or_default();
            for &i in &self.stub_order {
                let offset = text.append(Some(&[]), self.table.stub_size, 16);
                text.filled()
                    .resize((offset + self.table.stub_size) as usize, 0);
                self.stubs.insert(i, offset);
            }
        }
        for &i in &self.stub_order {
            let target = Target::Import(i);
            if let std::collections::hash_map::Entry::Vacant(e) = self.got.entry(target) {
                e.insert(0);
                self.got_order.push(target);
            }
        }
        {
            let relro = sections.entry(Home::Relro).or_default();
            for target in &self.got_order {
                let offset = relro.append(Some(&[0; 8]), 8, 8);
                self.got.insert(*target, offset);
            }
            for d in &self.tls_order {
                let offset = relro.append(Some(&[0; 16]), 16, 8);
                self.tls_pairs.insert(*d, offset);
            }
            for d in &self.descriptor_order {
                let offset = relro.append(Some(&[0; 16]), 16, 8);
                self.tls_descriptors.insert(*d, offset);
            }
        }
        sections.retain(|_, c| c.size > 0);

        // Windows unwind tables: each function's `UNWIND_INFO` in `.rodata`, and a
        // `RUNTIME_FUNCTION` per function in `.pdata`, in address order, filled once the
        // sections are placed (docs/FORMAT.md, "Function table").
        let mut function_table = Vec::new();
        for (id, _) in decls.get_functions() {
            let Some(body) = module.functions.get(&id) else {
                continue;
            };
            if let Some(UnwindInfo::WindowsX64(info)) = &body.unwind {
                let mut xdata = vec![0; info.emit_size()];
                info.emit(&mut xdata);
                let rodata = sections.entry(Home::Rodata).or_default();
                let at = rodata.append(Some(&xdata), xdata.len() as u64, 4);
                function_table.push((self.func_at[&id], body.bytes.len() as u64, at));
            }
        }
        function_table.sort_unstable();
        if !function_table.is_empty() {
            let size = 12 * function_table.len() as u64;
            sections.insert(
                Home::Pdata,
                Contents {
                    bytes: vec![0; size as usize],
                    size,
                    align: 4,
                },
            );
        }

        // Unwind tables: their size does not depend on addresses (every pointer is a 4-byte
        // PC-relative offset), so a first pass at address 0 sizes the section.
        let has_unwind = module
            .functions
            .values()
            .any(|f| matches!(f.unwind, Some(UnwindInfo::SystemV(_))));
        if has_unwind {
            let bytes = self.eh_frame(0, 0)?;
            sections.insert(
                Home::EhFrame,
                Contents {
                    size: bytes.len() as u64,
                    bytes,
                    align: 8,
                },
            );
        }

        // Place the sections.
        let mut layout = ImageLayout::with_page_size(self.table.page_size);
        let mut vaddr: HashMap<Home, u64> = HashMap::new();
        for (home, _, _) in HOMES {
            if let Some(c) = sections.get(&home) {
                vaddr.insert(home, layout.place(c.size)?);
            }
        }
        let text_vaddr = vaddr.get(&Home::Text).copied().unwrap_or(0);
        if has_unwind {
            let eh_vaddr = vaddr[&Home::EhFrame];
            let bytes = self.eh_frame(text_vaddr, eh_vaddr)?;
            sections
                .get_mut(&Home::EhFrame)
                .expect("inserted above")
                .bytes = bytes;
        }

        if let Some(pdata) = sections.get_mut(&Home::Pdata) {
            let rodata_vaddr = vaddr[&Home::Rodata];
            for (entry, &(at, size, xdata)) in pdata.bytes.chunks_exact_mut(12).zip(&function_table)
            {
                let begin = text_vaddr + at;
                for (field, value) in
                    entry
                        .chunks_exact_mut(4)
                        .zip([begin, begin + size, rodata_vaddr + xdata])
                {
                    let value = u32::try_from(value).map_err(|_| {
                        EmitError::Unwind(format!(
                            "image offset {value:#x} does not fit a function table entry"
                        ))
                    })?;
                    field.copy_from_slice(&value.to_le_bytes());
                }
            }
        }

        let mut builder = ModuleBuilder::new();
        builder.arch = self.table.arch;
        if module.builder.isa.triple().operating_system == target_lexicon::OperatingSystem::Windows
        {
            builder.platform = smf_format::Platform::Windows;
        }
        builder.page_size = self.table.page_size;
        if module.builder.reloadable {
            builder.flags = builder.flags.union(ModuleFlags::RELOADABLE);
        }
        let address = |e: &Emitter<'_>, target: Target| -> u64 {
            match target {
                Target::Func(id, offset) => text_vaddr + e.func_at[&id] + u64::from(offset),
                Target::Data(id) => {
                    let (home, offset) = e.data_at[&id];
                    vaddr[&home] + offset
                }
                Target::Import(_) => 0,
            }
        };

        // Code relocations.
        for (id, r, via, target) in code_relocs {
            let at = self.func_at[&id] + u64::from(r.offset);
            let place = text_vaddr + at;
            let value = match (via, target) {
                (Via::Branch, Target::Import(i)) => text_vaddr + self.stubs[&i],
                (Via::Got, _) => vaddr[&Home::Relro] + self.got[&target],
                (Via::TlsGd, Target::Data(d)) => vaddr[&Home::Relro] + self.tls_pairs[&d],
                (Via::TlsDescriptor, Target::Data(d)) => {
                    vaddr[&Home::Relro] + self.tls_descriptors[&d]
                }
                _ => address(self, target),
            }
            .wrapping_add(r.addend as u64);
            let text = &mut sections.get_mut(&Home::Text).expect("has code").bytes;
            let field = text.get_mut(at as usize..).unwrap_or_default();
            (self.table.patch)(r.kind, field, place, value).map_err(|distance| {
                EmitError::OutOfRange {
                    place: format!("{}+{:#x}", func_name(decls, id), r.offset),
                    reloc: reloc_name(r.kind),
                    target: self.target_name(target),
                    distance,
                }
            })?;
        }
        // Stubs.
        for &i in &self.stub_order {
            let stub = text_vaddr + self.stubs[&i];
            let slot = vaddr[&Home::Relro] + self.got[&Target::Import(i)];
            let bytes =
                (self.table.stub)(stub, slot).map_err(|distance| EmitError::OutOfRange {
                    place: format!("stub of {}", self.imports[i as usize].0),
                    reloc: "stub".into(),
                    target: self.imports[i as usize].0.clone(),
                    distance,
                })?;
            let at = self.stubs[&i] as usize;
            sections.get_mut(&Home::Text).expect("has stubs").bytes[at..at + bytes.len()]
                .copy_from_slice(&bytes);
        }
        // GOT slots: imports are the loader's, addresses inside the module are relative.
        let mut pointers = Vec::new();
        for &target in &self.got_order {
            let place = vaddr[&Home::Relro] + self.got[&target];
            pointers.push((Home::Relro, place, target, 0i64));
        }
        for &d in &self.tls_order {
            let place = vaddr[&Home::Relro] + self.tls_pairs[&d];
            builder.add_reloc(smf_format::Reloc {
                offset: place,
                kind: RelocKind::TlsModule,
                import: None,
                addend: 0,
            });
            let (_, offset) = self.data_at[&d];
            let relro = &mut sections.get_mut(&Home::Relro).expect("has pairs").bytes;
            let at = (place - vaddr[&Home::Relro]) as usize + 8;
            relro[at..at + 8].copy_from_slice(&offset.to_le_bytes());
        }
        // TLS descriptors: the loader's descriptor function, then the variable's offset from
        // the thread pointer (which makes the loader give the module a static block).
        for &d in &self.descriptor_order {
            let place = vaddr[&Home::Relro] + self.tls_descriptors[&d];
            let (_, offset) = self.data_at[&d];
            builder.add_reloc(smf_format::Reloc {
                offset: place,
                kind: RelocKind::TlsDescriptor,
                import: None,
                addend: 0,
            });
            builder.add_reloc(smf_format::Reloc {
                offset: place + 8,
                kind: RelocKind::TpOffset,
                import: None,
                addend: offset as i64,
            });
        }
        // Pointers in data.
        for (id, _) in decls.get_data_objects() {
            let Some(body) = module.data.get(&id) else {
                continue;
            };
            let (home, offset) = self.data_at[&id];
            let place_name = data_name(decls, id);
            for r in &body.relocs {
                let target = self.resolve(&r.name, &place_name, r.kind)?;
                if u64::from(r.offset) + 8 > body.size {
                    let why = format!(
                        "the pointer at offset {:#x} runs past the end of the {}-byte data object",
                        r.offset, body.size
                    );
                    return Err(self.unsupported(&place_name, r, target, &why));
                }
                if self.is_tls(target) {
                    return Err(self.unsupported(
                        &place_name,
                        r,
                        target,
                        "a thread-local has no fixed address",
                    ));
                }
                pointers.push((
                    home,
                    vaddr[&home] + offset + u64::from(r.offset),
                    target,
                    r.addend,
                ));
            }
        }
        for (home, place, target, addend) in pointers {
            let word = match target {
                Target::Import(i) => {
                    builder.add_reloc(smf_format::Reloc {
                        offset: place,
                        kind: RelocKind::Abs64,
                        import: Some(i),
                        addend,
                    });
                    0
                }
                _ => {
                    let value = address(self, target).wrapping_add(addend as u64);
                    if place % 8 == 0 {
                        builder.add_relative(place);
                    } else {
                        builder.add_reloc(smf_format::Reloc {
                            offset: place,
                            kind: RelocKind::Relative64,
                            import: None,
                            addend: value as i64,
                        });
                    }
                    value
                }
            };
            let bytes = &mut sections.get_mut(&home).expect("holds the pointer").bytes;
            let at = (place - vaddr[&home]) as usize;
            bytes[at..at + 8].copy_from_slice(&word.to_le_bytes());
        }

        // Sections, symbols, imports.
        let mut index: HashMap<Home, u32> = HashMap::new();
        for (home, kind, name) in HOMES {
            if let Some(c) = sections.remove(&home) {
                let i = builder.add_section(LoadedSection {
                    kind,
                    name,
                    vaddr: vaddr[&home],
                    mem_size: c.size,
                    align: c.align.max(1),
                    data: c.bytes,
                });
                index.insert(home, i);
            }
        }
        let names: Vec<(Target, String, Linkage, u64)> = decls
            .get_functions()
            .filter(|(id, _)| self.func_at.contains_key(id))
            .map(|(id, d)| {
                let size = module
                    .functions
                    .get(&id)
                    .map_or(0, |f| f.bytes.len() as u64);
                (Target::Func(id, 0), func_name(decls, id), d.linkage, size)
            })
            .chain(
                decls
                    .get_data_objects()
                    .filter(|(id, _)| self.data_at.contains_key(id))
                    .map(|(id, d)| {
                        let size = module.data.get(&id).map_or(0, |b| b.size);
                        (Target::Data(id), data_name(decls, id), d.linkage, size)
                    }),
            )
            .collect();
        // Each function's signature in the module's type table (`docs/FORMAT.md`, *Type
        // information*), so that a reload is checked against what callers were linked to.
        let mut types = smf_format::typeinfo::TypeTableBuilder::new();
        for (target, name, linkage, size) in &names {
            let type_id = match *target {
                Target::Func(id, _) => {
                    signature_type(&mut types, &decls.get_function_decl(id).signature).unwrap_or(0)
                }
                _ => 0,
            };
            let (kind, home) = match *target {
                Target::Func(..) => (SymbolKind::Function, Home::Text),
                Target::Data(id) => (SymbolKind::Data, self.data_at[&id].0),
                Target::Import(_) => continue,
            };
            let binding = match linkage {
                Linkage::Export => Binding::Global,
                Linkage::Preemptible => Binding::Weak,
                _ => Binding::Local,
            };
            builder.add_symbol(Symbol {
                name,
                kind,
                binding,
                visibility: Visibility::Default,
                section: Some(index[&home]),
                value: address(self, *target),
                size: *size,
                type_id,
                version: 0,
            });
        }
        if !types.is_empty() {
            builder.set_types(&types);
        }
        for (name, kind, binding) in &self.imports {
            builder.add_import(Import {
                name,
                kind: *kind,
                binding: *binding,
                type_id: 0,
                version: 0,
            });
        }
        for library in &module.builder.needed {
            builder.add_needed(library);
        }
        if let Some(entry) = &module.builder.entry {
            let id = match decls.get_name(entry) {
                Some(cranelift_module::FuncOrDataId::Func(id))
                    if self.func_at.contains_key(&id) =>
                {
                    id
                }
                _ => {
                    return Err(EmitError::Entry {
                        name: entry.clone(),
                    });
                }
            };
            builder.entry_point = Some(address(self, Target::Func(id, 0)));
        }
        Ok(builder.write()?)
    }

    fn unsupported(&self, place: &str, r: &ModuleReloc, target: Target, why: &str) -> EmitError {
        EmitError::Unsupported {
            place: place.to_owned(),
            reloc: reloc_name(r.kind),
            target: self.target_name(target),
            why: why.to_owned(),
        }
    }

    /// The `.eh_frame` for code at `text_vaddr`, placed at `eh_vaddr`: one CIE, one FDE per
    /// function Cranelift gave unwind information for, addresses PC-relative, and the zero
    /// terminator the unwinder stops at.
    fn eh_frame(&self, text_vaddr: u64, eh_vaddr: u64) -> Result<Vec<u8>, EmitError> {
        let isa = &*self.module.builder.isa;
        let mut table = FrameTable::default();
        let mut cie = isa.create_systemv_cie().ok_or_else(|| {
            EmitError::Unwind(format!("no System V unwind tables for {}", isa.triple()))
        })?;
        // PC-relative, so that the section needs no load-time relocation.
        cie.fde_address_encoding = gimli::constants::DwEhPe(
            gimli::constants::DW_EH_PE_pcrel.0 | gimli::constants::DW_EH_PE_sdata4.0,
        );
        let cie = table.add_cie(cie);
        for (id, _) in self.decls.get_functions() {
            let Some(UnwindInfo::SystemV(info)) = self
                .module
                .functions
                .get(&id)
                .and_then(|f| f.unwind.as_ref())
            else {
                continue;
            };
            let start = text_vaddr + self.func_at[&id];
            // gimli writes a PC-relative constant as `value - offset in the section`: give it
            // the function's distance from the section's start.
            let address = Address::Constant(start.wrapping_sub(eh_vaddr));
            table.add_fde(cie, info.to_fde(address));
        }
        let mut eh = EhFrame(EndianVec::new(gimli::LittleEndian));
        table
            .write_eh_frame(&mut eh)
            .map_err(|e| EmitError::Unwind(e.to_string()))?;
        let mut bytes = eh.0.into_vec();
        bytes.extend_from_slice(&[0; 4]);
        Ok(bytes)
    }
}
