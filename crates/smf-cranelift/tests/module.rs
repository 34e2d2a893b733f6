//! Modules written by `SmfModule`, loaded from memory and called: the behaviours
//! cranelift-jit's tests and demo check (calls, recursion, data, read-only data, pointers in
//! data, host functions and data, libcalls, function pointers, thread-locals), plus unwinding
//! through compiled frames and errors for what SMF cannot express.

mod common;

use common::*;
use cranelift_codegen::ir::{InstBuilder, MemFlagsData, types::F64, types::I64};
use cranelift_module::{DataDescription, Linkage, Module, default_libcall_names};
use simple_loader::{LoadOptions, ModuleSource};
use smf_cranelift::{SmfBuilder, SmfModule};

fn emit(name: &str, build: impl FnOnce(&mut SmfModule)) -> Vec<u8> {
    let builder = SmfBuilder::new(isa(), name, default_libcall_names()).unwrap();
    let mut module = SmfModule::new(builder);
    build(&mut module);
    module.finish().emit().unwrap()
}

fn load(name: &str, bytes: Vec<u8>) -> simple_loader::Module {
    let resolver = host_resolver();
    // SAFETY: the module is the test's own code, calling only the host functions above.
    unsafe {
        simple_loader::load(
            ModuleSource::Bytes {
                bytes,
                name: name.to_owned(),
            },
            &LoadOptions::default(),
            Some(&*resolver),
        )
    }
    .unwrap()
}

#[test]
fn calls_data_pointers_and_host_imports() {
    let bytes = emit("program", |m| program(m, 1));
    let parsed = smf_format::Module::parse(&bytes).unwrap();
    // Calls to the host go through a stub and a GOT slot; the rest was resolved at emit.
    let imports: Vec<_> = parsed.imports().iter().map(|i| i.name).collect();
    assert_eq!(imports, ["host_triple", "host_value"]);
    let module = load("program", bytes);
    // SAFETY: the signatures are those `program` defines.
    unsafe {
        let add = module.get::<extern "C" fn(i64, i64) -> i64>("add").unwrap();
        assert_eq!(add(2, 40), 42);
        let fib = module.get::<extern "C" fn(i64) -> i64>("fib").unwrap();
        assert_eq!(fib(20), 6765);
        let bump = module.get::<extern "C" fn() -> i64>("bump").unwrap();
        assert_eq!((bump(), bump(), bump()), (1, 2, 3));
        let via = module.get::<extern "C" fn() -> i64>("via_pointer").unwrap();
        assert_eq!(via(), 3);
        let sum = module
            .get::<extern "C" fn() -> i64>("greeting_sum")
            .unwrap();
        assert_eq!(sum(), i64::from(b'h' + b'o'));
        let dispatch = module
            .get::<extern "C" fn(i64, i64) -> i64>("dispatch")
            .unwrap();
        assert_eq!((dispatch(0, 21), dispatch(1, 41)), (42, 42));
        let call_host = module
            .get::<extern "C" fn(i64) -> i64>("call_host")
            .unwrap();
        assert_eq!(call_host(14), 43);
        let host_data = module.get::<extern "C" fn() -> i64>("host_data").unwrap();
        assert_eq!(host_data(), 1234);
    }
    // Local functions are symbols for the symbolizer but not exports.
    assert!(module.export("double").is_none());
    assert!(module.export("dispatch").is_some());
    let counter = module.data("counter").unwrap();
    assert_eq!(counter.size(), 8);
}

#[test]
fn every_function_has_a_symbol_and_unwind_tables() {
    let bytes = emit("program", |m| program(m, 1));
    let parsed = smf_format::Module::parse(&bytes).unwrap();
    for name in ["add", "fib", "double", "inc", "dispatch", "call_host"] {
        let symbol = parsed
            .symbols()
            .valid()
            .map(|(_, s)| s)
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no symbol {name}"));
        assert_eq!(symbol.kind, smf_format::SymbolKind::Function);
        assert!(symbol.size > 0, "{name} has no size");
    }
    let eh = parsed
        .sections()
        .iter()
        .find(|s| s.kind == smf_format::SectionKind::EhFrame)
        .expect("an .eh_frame section");
    // A CIE, FDEs, and the zero terminator.
    assert!(eh.data.len() > 4 && eh.data.ends_with(&[0; 4]));
}

/// A libcall: without SSE4.1, Cranelift lowers `floor` to a call of libm's `floor`, which
/// the module imports from the `needed` library.
#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "x86-64 only: it loads an x86-64 module (aarch64 has an instruction for floor, \
              so Cranelift makes no libcall there)"
)]
fn libcalls_are_imports() {
    use cranelift_codegen::settings::{self, Configurable};
    let mut flags = settings::builder();
    flags.set("is_pic", "true").unwrap();
    let isa = cranelift_codegen::isa::lookup_by_name("x86_64-unknown-linux-gnu")
        .unwrap()
        .finish(settings::Flags::new(flags))
        .unwrap();
    let mut builder = SmfBuilder::new(isa, "libcall", default_libcall_names()).unwrap();
    builder.needed("libm.so.6");
    let mut module = SmfModule::new(builder);
    func(
        &mut module,
        "floor_of",
        Linkage::Export,
        &[F64],
        &[F64],
        |_, b, a| vec![b.ins().floor(a[0])],
    );
    let bytes = module.finish().emit().unwrap();
    let parsed = smf_format::Module::parse(&bytes).unwrap();
    assert!(parsed.imports().iter().any(|i| i.name == "floor"));
    let module = load("libcall", bytes);
    // SAFETY: `floor_of` is `f64 -> f64`.
    let floor_of = unsafe { module.get::<extern "C" fn(f64) -> f64>("floor_of").unwrap() };
    assert_eq!(floor_of(2.75), 2.0);
    assert_eq!(floor_of(-0.5), -1.0);
}

/// Thread-locals: general-dynamic accesses, through `__tls_get_addr` on x86-64 and TLS
/// descriptor calls on aarch64; every thread starts from the template and counts on its own.
#[test]
fn thread_locals_are_per_thread() {
    let bytes = emit("tls", |m| {
        let ptr = m.target_config().pointer_type();
        let tl = m
            .declare_data("per_thread", Linkage::Export, true, true)
            .unwrap();
        let mut desc = DataDescription::new();
        desc.define(100i64.to_le_bytes().to_vec().into_boxed_slice());
        desc.set_align(8);
        m.define_data(tl, &desc).unwrap();
        let zeroed = m
            .declare_data("zeroed", Linkage::Local, true, true)
            .unwrap();
        let mut desc = DataDescription::new();
        desc.define_zeroinit(8);
        desc.set_align(8);
        m.define_data(zeroed, &desc).unwrap();
        func(m, "tick", Linkage::Export, &[], &[I64], |m, b, _| {
            let gv = m.declare_data_in_func(tl, b.func);
            let addr = b.ins().tls_value(ptr, gv);
            let old = b.ins().load(I64, MemFlagsData::trusted(), addr, 0);
            let new = b.ins().iadd_imm_s(old, 1);
            b.ins().store(MemFlagsData::trusted(), new, addr, 0);
            let gv = m.declare_data_in_func(zeroed, b.func);
            let z = b.ins().tls_value(ptr, gv);
            let zold = b.ins().load(I64, MemFlagsData::trusted(), z, 0);
            let znew = b.ins().iadd_imm_s(zold, 1000);
            b.ins().store(MemFlagsData::trusted(), znew, z, 0);
            vec![b.ins().iadd(new, znew)]
        });
    });
    let module = load("tls", bytes);
    // SAFETY: `tick` is `() -> i64`.
    let tick = unsafe { module.get::<extern "C" fn() -> i64>("tick").unwrap() };
    let tick = *tick;
    assert_eq!((tick(), tick()), (1101, 2102));
    let other = std::thread::spawn(move || (tick(), tick())).join().unwrap();
    assert_eq!(other, (1101, 2102));
    assert_eq!(tick(), 3103);
}

extern "C" fn capture_backtrace() -> i64 {
    let trace = std::backtrace::Backtrace::force_capture().to_string();
    i64::from(trace.contains("unwinds_through_compiled_frames"))
}

/// A backtrace taken in a host function called from compiled code reaches the test that
/// called the compiled code: the unwinder steps through the compiled frame with the
/// module's `.eh_frame`.
#[test]
fn unwinds_through_compiled_frames() {
    let bytes = emit("unwind", |m| {
        let host = declare(m, "capture_backtrace", Linkage::Import, &[], &[I64]);
        func(m, "outer", Linkage::Export, &[I64], &[I64], |m, b, a| {
            // Work around the call so the frame is a real one with saved state.
            let r = call(m, b, host, &[])[0];
            let x = b.ins().imul(a[0], a[0]);
            vec![b.ins().iadd(r, x)]
        });
    });
    let resolver = |import: &smf_format::Import<'_>, _: &smf_format::typeinfo::TypeInfo<'_>| {
        Ok(
            (import.name == "capture_backtrace").then(|| simple_loader::Resolution {
                address: capture_backtrace as *const () as usize,
                provider: None,
                keep_alive: None,
            }),
        )
    };
    // SAFETY: the module only calls `capture_backtrace`.
    let module = unsafe {
        simple_loader::load(
            ModuleSource::Bytes {
                bytes,
                name: "unwind".into(),
            },
            &LoadOptions::default(),
            Some(&resolver),
        )
    }
    .unwrap();
    // SAFETY: `outer` is `i64 -> i64`.
    let outer = unsafe { module.get::<extern "C" fn(i64) -> i64>("outer").unwrap() };
    assert_eq!(outer(3), 10, "the backtrace did not reach the test");
}

#[test]
fn non_pic_code_is_refused_with_the_reason() {
    use cranelift_codegen::settings::{self, Configurable};
    let mut flags = settings::builder();
    flags.set("is_pic", "false").unwrap();
    let isa = cranelift_native::builder()
        .unwrap()
        .finish(settings::Flags::new(flags))
        .unwrap();
    let error = SmfBuilder::new(isa, "m", default_libcall_names())
        .err()
        .unwrap();
    assert!(error.to_string().contains("is_pic"), "{error}");
}

/// An ISA for `triple` making position-independent code.
fn isa_for(triple: &str) -> cranelift_codegen::isa::OwnedTargetIsa {
    use cranelift_codegen::settings::{self, Configurable};
    let mut flags = settings::builder();
    flags.set("is_pic", "true").unwrap();
    cranelift_codegen::isa::lookup_by_name(triple)
        .unwrap()
        .finish(settings::Flags::new(flags))
        .unwrap()
}

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "x86-64 only: the tests are built with the host's backend, and Windows modules \
              hold x86-64 code"
)]
fn an_isa_for_windows_gives_a_windows_module_with_a_function_table() {
    let builder = SmfBuilder::new(
        isa_for("x86_64-pc-windows-gnu"),
        "win",
        default_libcall_names(),
    )
    .unwrap();
    let mut module = SmfModule::new(builder);
    func(
        &mut module,
        "add",
        Linkage::Export,
        &[I64, I64],
        &[I64],
        |_, b, a| vec![b.ins().iadd(a[0], a[1])],
    );
    let host = declare(&mut module, "host_triple", Linkage::Import, &[I64], &[I64]);
    func(
        &mut module,
        "call_host",
        Linkage::Export,
        &[I64],
        &[I64],
        |m, b, a| {
            let r = call(m, b, host, &[a[0]]);
            vec![b.ins().iadd_imm_s(r[0], 1)]
        },
    );
    let bytes = module.finish().emit().unwrap();
    let parsed = smf_format::Module::parse(&bytes).unwrap();
    assert_eq!(parsed.header().platform, smf_format::Platform::Windows);
    let section = |kind| parsed.sections().iter().find(|s| s.kind == kind);
    assert!(section(smf_format::SectionKind::EhFrame).is_none());
    // One RUNTIME_FUNCTION per function, in address order: begin, end, UNWIND_INFO.
    let pdata = section(smf_format::SectionKind::Pdata).expect("a pdata section");
    let entries: Vec<[u64; 3]> = pdata
        .data
        .chunks_exact(12)
        .map(|e| {
            [0, 4, 8].map(|at| u64::from(u32::from_le_bytes(e[at..at + 4].try_into().unwrap())))
        })
        .collect();
    let mut functions: Vec<(u64, u64)> = ["add", "call_host"]
        .map(|name| {
            let (_, s) = parsed
                .symbols()
                .valid()
                .find(|(_, s)| s.name == name)
                .unwrap();
            (s.value, s.value + s.size)
        })
        .to_vec();
    functions.sort();
    let ranges: Vec<(u64, u64)> = entries.iter().map(|e| (e[0], e[1])).collect();
    assert_eq!(ranges, functions);
    let rodata = section(smf_format::SectionKind::RoData).expect("UNWIND_INFO in rodata");
    for [_, _, info] in entries {
        assert_eq!(info % 4, 0);
        let at = info.checked_sub(rodata.vaddr).expect("in rodata") as usize;
        // UNWIND_INFO version 1, and a frame: Cranelift pushes rbp.
        let header = &rodata.data[at..at + 4];
        assert_eq!((header[0] & 7, header[2] > 0), (1, true), "{header:?}");
    }

    let error = SmfBuilder::new(
        isa_for("aarch64-pc-windows-msvc"),
        "m",
        default_libcall_names(),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(error.contains("Windows hold x86-64 code"), "{error}");
}

#[test]
fn a_declared_but_undefined_export_is_named() {
    let builder = SmfBuilder::new(isa(), "m", default_libcall_names()).unwrap();
    let mut module = SmfModule::new(builder);
    declare(&mut module, "missing", Linkage::Export, &[], &[]);
    let error = module.finish().emit().unwrap_err();
    assert_eq!(
        error.to_string(),
        "function `missing` is declared to be defined here but is not"
    );
}

#[test]
fn entry_point_and_reloadable_flag() {
    let mut builder = SmfBuilder::new(isa(), "exe", default_libcall_names()).unwrap();
    builder.entry("main").reloadable(true);
    let mut module = SmfModule::new(builder);
    func(
        &mut module,
        "main",
        Linkage::Export,
        &[I64, I64],
        &[I64],
        |_, b, _| vec![b.ins().iconst(I64, 7)],
    );
    let bytes = module.finish().emit().unwrap();
    let parsed = smf_format::Module::parse(&bytes).unwrap();
    let header = parsed.header();
    assert!(header.flags.contains(smf_format::ModuleFlags::RELOADABLE));
    assert_eq!(
        header.entry_point,
        Some(parsed.lookup("main").unwrap().value)
    );
    let module = load("exe", bytes);
    // SAFETY: `main` is `(i64, i64) -> i64`.
    let main = unsafe { module.entry::<extern "C" fn(i64, i64) -> i64>().unwrap() };
    assert_eq!(main(0, 0), 7);

    let mut builder = SmfBuilder::new(isa(), "exe", default_libcall_names()).unwrap();
    builder.entry("nowhere");
    let error = SmfModule::new(builder).finish().emit().unwrap_err();
    assert!(error.to_string().contains("nowhere"), "{error}");
}

/// Zero-initialised data holding a pointer goes to `.data` (cranelift-object leaves it in
/// `.bss`, where `smf pack` refuses the relocation).
#[test]
fn zero_initialised_data_with_a_pointer_is_relocated() {
    let bytes = emit("zeroptr", |m| {
        let answer = func(m, "answer", Linkage::Local, &[], &[I64], |_, b, _| {
            vec![b.ins().iconst(I64, 42)]
        });
        let table = m
            .declare_data("table", Linkage::Export, false, false)
            .unwrap();
        let mut desc = DataDescription::new();
        desc.define_zeroinit(8);
        let f = m.declare_func_in_data(answer, &mut desc);
        desc.write_function_addr(0, f);
        m.define_data(table, &desc).unwrap();
    });
    let module = load("zeroptr", bytes);
    let table = module.data("table").unwrap();
    // SAFETY: `table` holds one pointer to `answer`, an `() -> i64` function.
    let answer: extern "C" fn() -> i64 =
        unsafe { std::mem::transmute((table.address() as *const usize).read()) };
    assert_eq!(answer(), 42);
}

extern "C-unwind" fn host_panics(x: i64) -> i64 {
    if x > 0 {
        panic!("thrown through compiled code");
    }
    x
}

/// An exception (a Rust panic, which unwinds with the Itanium ABI as C++ exceptions do)
/// thrown by the host under a compiled function is caught by the host above it: both phases
/// of the unwinder walk through the compiled frame with the module's `.eh_frame`.
#[test]
fn exceptions_cross_compiled_frames() {
    let bytes = emit("throw", |m| {
        let host = declare(m, "host_panics", Linkage::Import, &[I64], &[I64]);
        func(m, "middle", Linkage::Export, &[I64], &[I64], |m, b, a| {
            let r = call(m, b, host, &[a[0]])[0];
            vec![b.ins().iadd_imm_s(r, 1)]
        });
    });
    let resolver = |import: &smf_format::Import<'_>, _: &smf_format::typeinfo::TypeInfo<'_>| {
        Ok(
            (import.name == "host_panics").then(|| simple_loader::Resolution {
                address: host_panics as *const () as usize,
                provider: None,
                keep_alive: None,
            }),
        )
    };
    // SAFETY: the module only calls `host_panics`.
    let module = unsafe {
        simple_loader::load(
            ModuleSource::Bytes {
                bytes,
                name: "throw".into(),
            },
            &LoadOptions::default(),
            Some(&resolver),
        )
    }
    .unwrap();
    // SAFETY: `middle` is `i64 -> i64`, and may unwind.
    let middle = *unsafe {
        module
            .get::<extern "C-unwind" fn(i64) -> i64>("middle")
            .unwrap()
    };
    assert_eq!(middle(-5), -4);
    let caught = std::panic::catch_unwind(|| middle(1)).unwrap_err();
    assert_eq!(
        caught.downcast_ref::<&str>(),
        Some(&"thrown through compiled code")
    );
}

/// Every compiled function has a symbol: the symbolizer names an address inside one.
#[test]
fn the_symbolizer_names_compiled_functions() {
    let module = load("symbols", emit("symbols", |m| program(m, 1)));
    let (symbol, address) = module.export("fib").unwrap();
    let location = simple_loader::symbolize(address + 5).unwrap();
    assert_eq!(location.symbol.as_deref(), Some("fib"));
    assert_eq!(location.offset, 5);
    assert!(symbol.size > 5);
    // A local function too.
    let parsed = module.file();
    let double = parsed
        .symbols()
        .valid()
        .map(|(_, s)| s)
        .find(|s| s.name == "double")
        .unwrap();
    let location = simple_loader::symbolize(module.base() + double.value as usize).unwrap();
    assert_eq!(location.symbol.as_deref(), Some("double"));
}

/// Relocations placed past the end of what they patch are errors, not panics.
#[test]
fn relocations_out_of_bounds_are_named() {
    let builder = SmfBuilder::new(isa(), "m", default_libcall_names()).unwrap();
    let mut module = SmfModule::new(builder);
    let f = declare(&mut module, "f", Linkage::Export, &[], &[]);
    let table = module
        .declare_data("table", Linkage::Export, false, false)
        .unwrap();
    let mut desc = DataDescription::new();
    desc.define_zeroinit(8);
    let fref = module.declare_func_in_data(f, &mut desc);
    desc.write_function_addr(4, fref);
    module.define_data(table, &desc).unwrap();
    module.define_function_bytes(f, 16, &[0xc3], &[]).unwrap();
    let error = module.finish().emit().unwrap_err();
    assert_eq!(
        error.to_string(),
        "table: relocation Abs8 to `f`: the pointer at offset 0x4 runs past the end of the 8-byte data object"
    );

    let builder = SmfBuilder::new(isa(), "m", default_libcall_names()).unwrap();
    let mut module = SmfModule::new(builder);
    let g = declare(&mut module, "g", Linkage::Import, &[], &[]);
    let f = declare(&mut module, "f", Linkage::Export, &[], &[]);
    let reloc = cranelift_module::ModuleReloc {
        offset: 2,
        kind: cranelift_codegen::binemit::Reloc::X86CallPLTRel4,
        name: cranelift_module::ModuleRelocTarget::user(0, g.as_u32()),
        addend: -4,
    };
    module
        .define_function_bytes(f, 16, &[0xe8, 0, 0, 0, 0], &[reloc])
        .unwrap();
    let error = module.finish().emit().unwrap_err();
    assert_eq!(
        error.to_string(),
        "f: relocation X86CallPLTRel4 to `g`: offset 0x2 is past the end of the function's 5 bytes"
    );
}
