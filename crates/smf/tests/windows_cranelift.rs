//! Cranelift's COFF output packed into Windows modules: cranelift-object compiles functions
//! for `x86_64-pc-windows-gnu` with the relocations it emits there (REL32 for calls between
//! the object's functions and for their data, ADDR64 for a table of function pointers, a
//! pointer in data and, in a `movabs`, the address of the imported `puts`, which the packer
//! turns into a load from its GOT slot). The test adds the `.pdata` and `.xdata` a Windows
//! embedder writes from Cranelift's unwind info (cranelift-object writes none for Windows),
//! and the module runs: under `smf.exe run` (output and exit status), and loaded by the test
//! with the host defining `puts`, where a stack walk and a Rust panic cross the Cranelift
//! frames. smf-cranelift's Windows module of the same program is loaded, checked the same
//! way, and swapped for a recompiled version. Built for `x86_64-pc-windows-gnu` and run
//! under Wine (README, "Windows"); on other systems this file is empty.
#![cfg(windows)]

mod common;

use std::path::Path;

use common::windows::{FRAMES, Outer, function_entry, image_of, panics, walk};
use cranelift_codegen::ir::{AbiParam, InstBuilder, MemFlagsData, Signature, Value, types};
use cranelift_codegen::isa::unwind::UnwindInfo;
use cranelift_codegen::settings::{self, Configurable as _};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_module::{DataDescription, FuncId, Linkage, Module};
use cranelift_object::object::pe::IMAGE_REL_AMD64_ADDR32NB;
use cranelift_object::object::write::{Relocation, SymbolId};
use cranelift_object::object::{RelocationFlags, SectionKind};
use cranelift_object::{ObjectBuilder, ObjectModule};
use simple_loader::Registry;

/// What `main` prints with `puts`.
const GREETING: &str = "hello from cranelift";
/// What `main` returns: `apply(0, 7) * 10 + apply(1, 1)`, with `ops = [double, triple]`.
const MAIN_STATUS: i32 = 143;

/// A function's unwind info for the function table: its symbol, code size and `.xdata`
/// bytes (a Windows x64 `UNWIND_INFO`).
struct Unwind {
    symbol: FuncId,
    size: u32,
    xdata: Vec<u8>,
}

/// Defines `id` with the signature `signature`, its single block computing `body` from the
/// parameters, and returns its unwind info.
fn define<M: Module>(
    module: &mut M,
    id: FuncId,
    signature: &Signature,
    body: impl FnOnce(&mut M, &mut FunctionBuilder<'_>, &[Value]) -> Value,
) -> Unwind {
    let config = module.target_config();
    let mut ctx = module.make_context();
    ctx.func.signature = signature.clone();
    let mut builder_ctx = FunctionBuilderContext::new();
    let mut builder = FunctionBuilder::new(&mut ctx.func, &mut builder_ctx);
    let block = builder.create_block();
    builder.append_block_params_for_function_params(block);
    builder.switch_to_block(block);
    builder.seal_block(block);
    let params = builder.block_params(block).to_vec();
    let result = body(module, &mut builder, &params);
    builder.ins().return_(&[result]);
    builder.finalize(config);
    module.define_function(id, &mut ctx).unwrap();
    let code = ctx.compiled_code().unwrap();
    let xdata = match code.create_unwind_info(module.isa()).unwrap() {
        Some(UnwindInfo::WindowsX64(info)) => {
            let mut xdata = vec![0; info.emit_size()];
            info.emit(&mut xdata);
            xdata
        }
        other => panic!("no Windows x64 unwind info: {other:?}"),
    };
    Unwind {
        symbol: id,
        size: code.code_info().total_size,
        xdata,
    }
}

/// Cranelift's ISA for `x86_64-pc-windows-gnu`.
fn windows_isa(is_pic: bool) -> cranelift_codegen::isa::OwnedTargetIsa {
    let mut flags = settings::builder();
    flags
        .set("is_pic", if is_pic { "true" } else { "false" })
        .unwrap();
    flags.set("opt_level", "speed").unwrap();
    cranelift_codegen::isa::lookup_by_name("x86_64-pc-windows-gnu")
        .unwrap()
        .finish(settings::Flags::new(flags))
        .unwrap()
}

/// The COFF object of [`program`], with its function table.
fn cranelift_object() -> Vec<u8> {
    // The object crate writes no GOT or PLT relocations for COFF: imports are reached
    // through absolute addresses (ADDR64 in a `movabs`).
    let isa = windows_isa(false);
    let mut module = ObjectModule::new(
        ObjectBuilder::new(isa, "cranelift", cranelift_module::default_libcall_names()).unwrap(),
    );
    let unwind = program(&mut module, 2);
    let mut product = module.finish();
    let symbols: Vec<SymbolId> = unwind
        .iter()
        .map(|u| product.function_symbol(u.symbol))
        .collect();
    add_function_table(&mut product.object, &unwind, &symbols);
    product.object.write().unwrap()
}

/// [`program`] as smf-cranelift writes it for Windows: a Windows module, with the function
/// table it makes from the same unwind info; `double` multiplies by `factor`.
fn smf_cranelift_module(factor: i64) -> Vec<u8> {
    let mut builder = smf_cranelift::SmfBuilder::new(
        windows_isa(true),
        "cranelift",
        cranelift_module::default_libcall_names(),
    )
    .unwrap();
    builder.reloadable(true);
    let mut module = smf_cranelift::SmfModule::new(builder);
    program(&mut module, factor);
    module.finish().emit().unwrap()
}

/// Defines the program in `module`, returning each function's unwind info: `main` prints
/// [`GREETING`] with the imported `puts` and returns [`MAIN_STATUS`] (with `factor` 2) from
/// calls through the table `ops = [double, triple]`, where `double(x) = x * factor` and
/// `triple(x) = double(x) + x`; `outer` calls `inner`, which calls the callback it is given.
fn program<M: Module>(module: &mut M, factor: i64) -> Vec<Unwind> {
    let call_conv = module.isa().default_call_conv();
    let signature = |params: &[types::Type], result: types::Type| {
        let mut signature = Signature::new(call_conv);
        signature
            .params
            .extend(params.iter().map(|&t| AbiParam::new(t)));
        signature.returns.push(AbiParam::new(result));
        signature
    };
    let (i32_i32, puts_sig) = (
        signature(&[types::I32], types::I32),
        signature(&[types::I64], types::I32),
    );
    let apply_sig = signature(&[types::I64, types::I32], types::I32);
    let main_sig = signature(&[], types::I32);
    let outer_sig = signature(&[types::I64, types::I32], types::I32);

    let puts = module
        .declare_function("puts", Linkage::Import, &puts_sig)
        .unwrap();
    // `double` is local to the object (a static COFF symbol), the others exported.
    let double = module
        .declare_function("double", Linkage::Local, &i32_i32)
        .unwrap();
    let triple = module
        .declare_function("triple", Linkage::Export, &i32_i32)
        .unwrap();
    let apply = module
        .declare_function("apply", Linkage::Export, &apply_sig)
        .unwrap();
    let main = module
        .declare_function("main", Linkage::Export, &main_sig)
        .unwrap();
    let inner = module
        .declare_function("inner", Linkage::Export, &outer_sig)
        .unwrap();
    let outer = module
        .declare_function("outer", Linkage::Export, &outer_sig)
        .unwrap();

    // Read-only data: the string, a pointer to it, and the function-pointer table.
    let greeting = module
        .declare_data("greeting", Linkage::Local, false, false)
        .unwrap();
    let mut description = DataDescription::new();
    description.define(format!("{GREETING}\0").into_bytes().into_boxed_slice());
    module.define_data(greeting, &description).unwrap();
    let greeting_ptr = module
        .declare_data("greeting_ptr", Linkage::Export, false, false)
        .unwrap();
    let mut description = DataDescription::new();
    description.define(Box::new([0; 8]));
    let value = module.declare_data_in_data(greeting, &mut description);
    description.write_data_addr(0, value, 0);
    module.define_data(greeting_ptr, &description).unwrap();
    let ops = module
        .declare_data("ops", Linkage::Export, false, false)
        .unwrap();
    let mut description = DataDescription::new();
    description.define(Box::new([0; 16]));
    for (slot, function) in [double, triple].into_iter().enumerate() {
        let function = module.declare_func_in_data(function, &mut description);
        description.write_function_addr(slot as u32 * 8, function);
    }
    module.define_data(ops, &description).unwrap();

    let mut unwind = Vec::new();
    unwind.push(define(module, double, &i32_i32, |_, b, p| {
        b.ins().imul_imm_s(p[0], factor)
    }));
    // triple(x) = double(x) + x: a call within the object.
    unwind.push(define(module, triple, &i32_i32, |m, b, p| {
        let callee = m.declare_func_in_func(double, b.func);
        let call = b.ins().call(callee, &[p[0]]);
        let doubled = b.inst_results(call)[0];
        b.ins().iadd(doubled, p[0])
    }));
    // apply(i, x) = ops[i](x).
    unwind.push(define(module, apply, &apply_sig, |m, b, p| {
        let table = m.declare_data_in_func(ops, b.func);
        let base = b.ins().symbol_value(types::I64, table);
        let offset = b.ins().imul_imm_s(p[0], 8);
        let slot = b.ins().iadd(base, offset);
        let function = b.ins().load(types::I64, MemFlagsData::trusted(), slot, 0);
        let sig = b.import_signature(i32_i32.clone());
        let call = b.ins().call_indirect(sig, function, &[p[1]]);
        b.inst_results(call)[0]
    }));
    unwind.push(define(module, main, &main_sig, |m, b, _| {
        let pointer = m.declare_data_in_func(greeting_ptr, b.func);
        let pointer = b.ins().symbol_value(types::I64, pointer);
        let text = b
            .ins()
            .load(types::I64, MemFlagsData::trusted(), pointer, 0);
        let puts = m.declare_func_in_func(puts, b.func);
        b.ins().call(puts, &[text]);
        let apply = m.declare_func_in_func(apply, b.func);
        let mut results = Vec::new();
        for (index, x) in [(0, 7), (1, 1)] {
            let index = b.ins().iconst(types::I64, index);
            let x = b.ins().iconst(types::I32, x);
            let call = b.ins().call(apply, &[index, x]);
            results.push(b.inst_results(call)[0]);
        }
        let tens = b.ins().imul_imm_s(results[0], 10);
        b.ins().iadd(tens, results[1])
    }));
    // inner(f, x) = f(x + 1) * 2; outer(f, x) = inner(f, x) + 1.
    unwind.push(define(module, inner, &outer_sig, |_, b, p| {
        let x = b.ins().iadd_imm_s(p[1], 1);
        let sig = b.import_signature(i32_i32.clone());
        let call = b.ins().call_indirect(sig, p[0], &[x]);
        let result = b.inst_results(call)[0];
        b.ins().imul_imm_s(result, 2)
    }));
    unwind.push(define(module, outer, &outer_sig, |m, b, p| {
        let inner = m.declare_func_in_func(inner, b.func);
        let call = b.ins().call(inner, &[p[0], p[1]]);
        let result = b.inst_results(call)[0];
        b.ins().iadd_imm_s(result, 1)
    }));

    unwind
}

/// Adds `.xdata` (each function's `UNWIND_INFO`) and `.pdata` (its `RUNTIME_FUNCTION`:
/// begin, end and unwind info, as image offsets) for the functions of `unwind`, whose
/// symbols are `symbols`.
fn add_function_table(
    object: &mut cranelift_object::object::write::Object<'static>,
    unwind: &[Unwind],
    symbols: &[SymbolId],
) {
    let xdata = object.add_section(Vec::new(), b".xdata".to_vec(), SectionKind::ReadOnlyData);
    let pdata = object.add_section(Vec::new(), b".pdata".to_vec(), SectionKind::ReadOnlyData);
    let xdata_symbol = object.section_symbol(xdata);
    for (function, &symbol) in unwind.iter().zip(symbols) {
        let info = object.append_section_data(xdata, &function.xdata, 4);
        let entry = object.append_section_data(pdata, &[0; 12], 4);
        let fields = [
            (symbol, 0),
            (symbol, i64::from(function.size)),
            (xdata_symbol, info as i64),
        ];
        for (field, (symbol, addend)) in fields.into_iter().enumerate() {
            object
                .add_relocation(
                    pdata,
                    Relocation {
                        offset: entry + field as u64 * 4,
                        symbol,
                        addend,
                        flags: RelocationFlags::Coff {
                            typ: IMAGE_REL_AMD64_ADDR32NB,
                        },
                    },
                )
                .unwrap();
        }
    }
}

/// Writes the object to `dir/cranelift.o` and packs it into `dir/cranelift.smf` with
/// `smf.exe pack`, `main` its entry point.
fn packed(dir: &Path) -> std::path::PathBuf {
    let object = dir.join("cranelift.o");
    std::fs::write(&object, cranelift_object()).unwrap();
    let module = dir.join("cranelift.smf");
    let mut pack = common::smf();
    pack.args(["pack", "--entry", "main", "-o"])
        .arg(&module)
        .arg(&object);
    common::check(pack);
    module
}

#[test]
fn a_cranelift_coff_object_packed_runs_under_smf_run() {
    let dir = tempfile::tempdir().unwrap();
    let module = packed(dir.path());
    let output = common::smf().arg("run").arg(&module).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        (output.status.code(), stdout.as_ref()),
        (Some(MAIN_STATUS), format!("{GREETING}\r\n").as_str()),
        "stderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

std::thread_local! {
    /// What the host's `puts` was given on this thread.
    static PRINTED: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The host's `puts`, which the module's import finds before msvcrt's.
extern "C" fn host_puts(text: *const std::ffi::c_char) -> i32 {
    // SAFETY: the module passes its NUL-terminated greeting.
    let text = unsafe { std::ffi::CStr::from_ptr(text) };
    PRINTED.with(|p| p.borrow_mut().push(text.to_string_lossy().into_owned()));
    1
}

/// The address of the start of the function the system unwinder's function table gives for
/// `address`, if any.
fn function_start(address: usize) -> Option<usize> {
    function_entry(address).map(|(begin, base)| base + begin)
}

#[test]
fn a_loaded_cranelift_module_imports_from_the_host_and_unwinds_through_its_frames() {
    let dir = tempfile::tempdir().unwrap();
    let path = packed(dir.path());
    let registry = Registry::new();
    // SAFETY: `host_puts` is an `int (const char *)` function that lives for the whole test.
    unsafe { registry.define("puts", host_puts as *const () as usize) };
    // SAFETY: the module has no constructors.
    let module = unsafe { registry.load(&path) }.unwrap();
    check_loaded(&module);
}

#[test]
fn smf_cranelift_writes_a_windows_module_that_imports_from_the_host_and_unwinds() {
    let bytes = smf_cranelift_module(2);
    let parsed = smf_format::Module::parse(&bytes).unwrap();
    assert_eq!(parsed.header().platform, smf_format::Platform::Windows);
    let registry = Registry::new();
    // SAFETY: as above.
    unsafe { registry.define("puts", host_puts as *const () as usize) };
    // SAFETY: the module has no constructors.
    let module = unsafe { registry.load_bytes("cranelift", bytes) }.unwrap();
    check_loaded(&module);
}

/// Runs `main` of a loaded [`program`] and checks what it printed with the host's `puts`,
/// that the system unwinder finds every function, and that a stack walk and a Rust panic
/// from a callback cross `inner` and `outer`.
fn check_loaded(module: &simple_loader::Module) {
    // SAFETY: `main` is `int (void)`.
    let main = unsafe { module.get::<extern "C" fn() -> i32>("main") }.unwrap();
    assert_eq!((*main)(), MAIN_STATUS);
    assert_eq!(PRINTED.with(|p| p.take()), [GREETING]);

    // Every function's entry in the module's table is found at its start.
    for name in ["triple", "apply", "main", "inner", "outer"] {
        let (_, start) = module.export(name).unwrap();
        assert_eq!(function_start(start + 1), Some(start), "{name}");
    }
    // SAFETY: `outer` has this signature.
    let outer = unsafe { module.get::<Outer>("outer") }.unwrap();
    assert_eq!((*outer)(walk, 4), 101);
    let frames = FRAMES.with(|f| f.borrow().clone());
    let within = |name: &str, address: usize| {
        let (_, start) = module.export(name).unwrap();
        function_start(address) == Some(start)
    };
    let at = |name: &str| frames.iter().position(|&a| within(name, a));
    let (inner_at, outer_at) = (at("inner"), at("outer"));
    assert!(
        matches!((inner_at, outer_at), (Some(i), Some(o)) if o == i + 1),
        "no inner and outer frames, in order, among {frames:x?}"
    );
    // Past the module's frames the walk reaches this test's program again.
    let here = image_of(check_loaded as *const () as usize);
    assert!(
        frames[outer_at.unwrap() + 1..]
            .iter()
            .any(|&a| image_of(a) == here),
        "the walk stops in module code: {frames:x?}"
    );

    // A panic unwinds through both Cranelift frames to the host's catch_unwind.
    let call = *outer;
    let caught = std::panic::catch_unwind(|| call(panics, 1)).unwrap_err();
    assert_eq!(
        caught.downcast_ref::<String>().map(String::as_str),
        Some("panic from the callback, x = 2")
    );
    assert_eq!((*outer)(walk, 0), 21);
}

#[test]
fn a_windows_module_from_smf_cranelift_swaps_and_its_new_code_unwinds() {
    let registry = Registry::new();
    // SAFETY: as above.
    unsafe { registry.define("puts", host_puts as *const () as usize) };
    // SAFETY: the module has no constructors.
    unsafe { registry.load_bytes("swapped", smf_cranelift_module(2)) }.unwrap();
    // SAFETY: `main` is `int (void)` in every version.
    let main =
        unsafe { registry.current_named::<extern "C" fn() -> i32>("swapped", "main") }.unwrap();
    assert_eq!((*main.pin())(), MAIN_STATUS);
    // SAFETY: as for the load.
    let report = unsafe { registry.reload_bytes("swapped", smf_cranelift_module(4)) }.unwrap();
    assert_eq!(report.version, 2);
    // apply(0, 7) = 28, apply(1, 1) = triple(1) = 5.
    assert_eq!((*main.pin())(), 285);
    assert_eq!(PRINTED.with(|p| p.take()), [GREETING, GREETING]);
    // The new version's functions are in the system unwinder's tables.
    let module = registry.get_named("swapped").unwrap();
    for name in ["triple", "apply", "main", "inner", "outer"] {
        let (_, start) = module.export(name).unwrap();
        assert_eq!(function_start(start + 1), Some(start), "{name}");
    }
}
