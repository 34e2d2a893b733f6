//! A [`cranelift_module::Module`] that writes SMF modules directly, to load from memory and
//! hot swap with `simple-loader`.
//!
//! The API mirrors `cranelift-object`'s, so that switching is one line: [`SmfBuilder::new`]
//! takes the arguments of `ObjectBuilder::new`, [`SmfModule`] implements `Module`, and
//! [`SmfModule::finish`] gives an [`SmfProduct`] whose [`emit`](SmfProduct::emit) returns
//! the bytes of a complete SMF module: no ELF object, no `smf pack`, no file.
//!
//! What a module holds: functions (`.text`, one symbol each, with `.eh_frame` from
//! Cranelift's unwind information so that backtraces and exceptions cross compiled frames;
//! for a Windows ISA a Windows module, with a `pdata` function table instead),
//! data (writable, read-only, read-only with pointers, thread-local), imports of functions
//! and data, libcalls, and function and data addresses in data. As `smf pack` does,
//! everything that points inside the module is resolved when emitting; only the addresses
//! of imports and absolute pointers into the module are left to the loader, in data. Calls
//! to imports go through a stub and a GOT slot, so modules and versions may lie anywhere in
//! the address space. Code must be compiled position independent (the `is_pic` flag).
//!
//! Linkage maps to SMF bindings: `Export` is a global symbol, `Preemptible` a weak one (SMF
//! has no preemption: calls inside the module bind to its own definition), `Local` and
//! `Hidden` are local symbols, `Import` (and `Preemptible` left undefined, as a weak import)
//! become imports resolved by the loader.
//!
//! `docs/CRANELIFT.md` in the repository says how to switch from `cranelift-jit` or
//! `cranelift-object` and what swapping a module in a `simple_loader::Registry` guarantees.
#![forbid(unsafe_code)]
// `ModuleResult` is cranelift_module's: the `Module` trait fixes its (large) error type.
#![allow(clippy::result_large_err)]

mod arch;
mod emit;
mod error;

use cranelift_codegen::binemit::Reloc;
use std::collections::HashMap;

use cranelift_codegen::ir;
use cranelift_codegen::isa::unwind::UnwindInfo;
use cranelift_codegen::isa::{OwnedTargetIsa, TargetIsa};
use cranelift_control::ControlPlane;
use cranelift_module::{
    DataDescription, DataId, FuncId, Init, Linkage, Module, ModuleDeclarations, ModuleError,
    ModuleReloc, ModuleResult,
};

pub use error::EmitError;

/// The library-call naming function `cranelift-object` and `cranelift-jit` take.
pub type LibcallNames = Box<dyn Fn(ir::LibCall) -> String + Send + Sync>;

/// Describes the module an [`SmfModule`] writes: what `cranelift_object::ObjectBuilder` does,
/// plus what an SMF module adds (reloadable, entry point, needed native libraries).
pub struct SmfBuilder {
    isa: OwnedTargetIsa,
    table: &'static arch::ArchTable,
    name: String,
    libcall_names: LibcallNames,
    reloadable: bool,
    entry: Option<String>,
    needed: Vec<String>,
}

impl SmfBuilder {
    /// A builder for code compiled by `isa`. `name` names the module (in loader errors and
    /// reload reports, and as its registry name); `libcall_names` maps Cranelift's library
    /// calls to the symbols imported for them (`cranelift_module::default_libcall_names()`).
    ///
    /// An ISA for Windows (x86-64 only) gives a Windows module: platform `windows` in its
    /// header and a `pdata` function table from Cranelift's Windows unwind information
    /// instead of `.eh_frame`.
    ///
    /// Refuses an ISA that SMF has no code model for, or whose code is not position
    /// independent: SMF code pages are never written at load, so a module cannot hold the
    /// absolute addresses that non-PIC code embeds in instructions.
    pub fn new<V: Into<Vec<u8>>>(
        isa: OwnedTargetIsa,
        name: V,
        libcall_names: LibcallNames,
    ) -> ModuleResult<SmfBuilder> {
        let name = String::from_utf8(name.into())
            .map_err(|e| ModuleError::Backend(anyhow::anyhow!("module name is not UTF-8: {e}")))?;
        let table = arch::for_isa(isa.triple().architecture).ok_or_else(|| {
            ModuleError::Backend(anyhow::anyhow!(
                "SMF modules hold x86-64 or aarch64 code, not {}",
                isa.triple().architecture
            ))
        })?;
        let triple = isa.triple();
        if triple.operating_system == target_lexicon::OperatingSystem::Windows
            && triple.architecture != target_lexicon::Architecture::X86_64
        {
            return Err(ModuleError::Backend(anyhow::anyhow!(
                "SMF modules for Windows hold x86-64 code, not {}",
                triple.architecture
            )));
        }
        if !isa.flags().is_pic() {
            return Err(ModuleError::Backend(anyhow::anyhow!(
                "SMF modules need position-independent code: set the `is_pic` flag to true \
                 (cranelift-jit users typically set it to false)"
            )));
        }
        Ok(SmfBuilder {
            isa,
            table,
            name,
            libcall_names,
            reloadable: false,
            entry: None,
            needed: Vec::new(),
        })
    }

    /// Marks the module `RELOADABLE`: a `Registry` may replace it while the process runs,
    /// and calls into it from other modules and `Current` handles follow the replacement.
    pub fn reloadable(&mut self, reloadable: bool) -> &mut SmfBuilder {
        self.reloadable = reloadable;
        self
    }

    /// Makes the module executable with entry point `function` (a function defined in it),
    /// called by `smf run` as `int main(int argc, char **argv)`.
    pub fn entry(&mut self, function: &str) -> &mut SmfBuilder {
        self.entry = Some(function.to_owned());
        self
    }

    /// A native shared library (`libm.so.6`) the loader opens before resolving imports.
    pub fn needed(&mut self, library: &str) -> &mut SmfBuilder {
        self.needed.push(library.to_owned());
        self
    }
}

/// A function body as compiled.
struct FunctionBody {
    bytes: Vec<u8>,
    align: u64,
    relocs: Vec<ModuleReloc>,
    unwind: Option<UnwindInfo>,
}

/// A data object as described.
struct DataBody {
    /// `None`: zeros of `size` bytes.
    bytes: Option<Vec<u8>>,
    size: u64,
    align: u64,
    relocs: Vec<ModuleReloc>,
}

/// A `cranelift_module::Module` whose functions and data are written as one SMF module.
pub struct SmfModule {
    builder: SmfBuilder,
    declarations: ModuleDeclarations,
    functions: HashMap<FuncId, FunctionBody>,
    data: HashMap<DataId, DataBody>,
}

impl SmfModule {
    pub fn new(builder: SmfBuilder) -> SmfModule {
        SmfModule {
            builder,
            declarations: ModuleDeclarations::default(),
            functions: HashMap::new(),
            data: HashMap::new(),
        }
    }

    /// Ends the definitions; the product writes the module.
    pub fn finish(self) -> SmfProduct {
        SmfProduct { module: self }
    }

    fn define_function_body(&mut self, func_id: FuncId, body: FunctionBody) -> ModuleResult<()> {
        let decl = self.declarations.get_function_decl(func_id);
        let name = decl.linkage_name(func_id).into_owned();
        if !decl.linkage.is_definable() {
            return Err(ModuleError::InvalidImportDefinition(name));
        }
        if self.functions.contains_key(&func_id) {
            return Err(ModuleError::DuplicateDefinition(name));
        }
        self.functions.insert(func_id, body);
        Ok(())
    }
}

/// A finished module, ready to be written.
pub struct SmfProduct {
    module: SmfModule,
}

impl SmfProduct {
    /// The module's name, as given to [`SmfBuilder::new`].
    pub fn name(&self) -> &str {
        &self.module.builder.name
    }

    /// The declarations (names, linkages, signatures) of the module's functions and data.
    pub fn declarations(&self) -> &ModuleDeclarations {
        &self.module.declarations
    }

    /// Writes the SMF module: lays out the image, resolves every relocation inside it,
    /// leaves imports and absolute pointers to the loader, and returns the file's bytes
    /// (checked by `smf_format`'s reader before they are returned).
    pub fn emit(self) -> Result<Vec<u8>, EmitError> {
        emit::emit(&self.module)
    }
}

fn validate_symbol(name: &str) -> ModuleResult<()> {
    if name.is_empty() || name.contains('\0') {
        return Err(ModuleError::Backend(anyhow::anyhow!(
            "symbol name {name:?} is empty or contains a NUL byte"
        )));
    }
    Ok(())
}

impl Module for SmfModule {
    fn isa(&self) -> &dyn TargetIsa {
        &*self.builder.isa
    }

    fn declarations(&self) -> &ModuleDeclarations {
        &self.declarations
    }

    fn declare_function(
        &mut self,
        name: &str,
        linkage: Linkage,
        signature: &ir::Signature,
    ) -> ModuleResult<FuncId> {
        validate_symbol(name)?;
        let (id, _) = self
            .declarations
            .declare_function(name, linkage, signature)?;
        Ok(id)
    }

    fn declare_anonymous_function(&mut self, signature: &ir::Signature) -> ModuleResult<FuncId> {
        self.declarations.declare_anonymous_function(signature)
    }

    fn declare_data(
        &mut self,
        name: &str,
        linkage: Linkage,
        writable: bool,
        tls: bool,
    ) -> ModuleResult<DataId> {
        validate_symbol(name)?;
        let (id, _) = self
            .declarations
            .declare_data(name, linkage, writable, tls)?;
        Ok(id)
    }

    fn declare_anonymous_data(&mut self, writable: bool, tls: bool) -> ModuleResult<DataId> {
        self.declarations.declare_anonymous_data(writable, tls)
    }

    fn define_function_with_control_plane(
        &mut self,
        func_id: FuncId,
        ctx: &mut cranelift_codegen::Context,
        ctrl_plane: &mut ControlPlane,
    ) -> ModuleResult<()> {
        let isa = &*self.builder.isa;
        let align = u64::from(ctx.compile(isa, ctrl_plane)?.buffer.alignment);
        let compiled = ctx.compiled_code().ok_or_else(|| {
            ModuleError::Backend(anyhow::anyhow!("Cranelift kept no compiled code"))
        })?;
        let unwind = compiled
            .create_unwind_info(isa)
            .map_err(ModuleError::Compilation)?;
        let relocs = compiled
            .buffer
            .relocs()
            .iter()
            .map(|r| ModuleReloc::from_mach_reloc(r, &ctx.func, func_id))
            .collect();
        let body = FunctionBody {
            bytes: compiled.buffer.data().to_vec(),
            align,
            relocs,
            unwind,
        };
        self.define_function_body(func_id, body)
    }

    fn define_function_bytes(
        &mut self,
        func_id: FuncId,
        alignment: u64,
        bytes: &[u8],
        relocs: &[ModuleReloc],
    ) -> ModuleResult<()> {
        let body = FunctionBody {
            bytes: bytes.to_vec(),
            align: alignment,
            relocs: relocs.to_vec(),
            unwind: None,
        };
        self.define_function_body(func_id, body)
    }

    fn define_data(&mut self, data_id: DataId, data: &DataDescription) -> ModuleResult<()> {
        let decl = self.declarations.get_data_decl(data_id);
        let name = decl.linkage_name(data_id).into_owned();
        if !decl.linkage.is_definable() {
            return Err(ModuleError::InvalidImportDefinition(name));
        }
        if self.data.contains_key(&data_id) {
            return Err(ModuleError::DuplicateDefinition(name));
        }
        if data.custom_section.is_some() {
            return Err(ModuleError::Backend(anyhow::anyhow!(
                "data object `{name}`: SMF modules have no custom sections"
            )));
        }
        let (bytes, size) = match &data.init {
            Init::Uninitialized => {
                return Err(ModuleError::Backend(anyhow::anyhow!(
                    "data object `{name}` has no contents (Init::Uninitialized)"
                )));
            }
            Init::Zeros { size } => (None, *size as u64),
            Init::Bytes { contents } => (Some(contents.to_vec()), contents.len() as u64),
        };
        let relocs = data.all_relocs(Reloc::Abs8).collect();
        self.data.insert(
            data_id,
            DataBody {
                bytes,
                size,
                align: data.align.unwrap_or(1).max(1),
                relocs,
            },
        );
        Ok(())
    }
}
