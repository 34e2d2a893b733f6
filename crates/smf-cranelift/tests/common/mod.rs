//! Shared by the tests: an ISA for SMF code, a helper to define a function, and a program
//! written once against `cranelift_module::Module` so that every backend compiles the same
//! functions.
#![allow(dead_code)]

use cranelift_codegen::ir::{AbiParam, InstBuilder, MemFlagsData, Type, Value, types::I64};
use cranelift_codegen::isa::OwnedTargetIsa;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_module::{DataDescription, FuncId, Linkage, Module};
use simple_loader::{ImportResolver, Resolution};

/// The host's ISA with what SMF code needs: position independent, general-dynamic TLS.
pub fn isa() -> OwnedTargetIsa {
    let mut flags = settings::builder();
    flags.set("is_pic", "true").unwrap();
    flags.set("tls_model", "elf_gd").unwrap();
    flags.set("opt_level", "speed").unwrap();
    cranelift_native::builder()
        .unwrap()
        .finish(settings::Flags::new(flags))
        .unwrap()
}

/// Declares and defines function `name`; `body` gets the module, the builder (in the entry
/// block) and the parameters, and returns the results.
pub fn func<M: Module>(
    module: &mut M,
    name: &str,
    linkage: Linkage,
    params: &[Type],
    returns: &[Type],
    body: impl FnOnce(&mut M, &mut FunctionBuilder, &[Value]) -> Vec<Value>,
) -> FuncId {
    let mut sig = module.make_signature();
    sig.params.extend(params.iter().map(|&t| AbiParam::new(t)));
    sig.returns
        .extend(returns.iter().map(|&t| AbiParam::new(t)));
    let id = module.declare_function(name, linkage, &sig).unwrap();
    let fc = module.target_config();
    let mut ctx = module.make_context();
    ctx.func.signature = sig;
    let mut fctx = FunctionBuilderContext::new();
    {
        let mut b = FunctionBuilder::new(&mut ctx.func, &mut fctx);
        let block = b.create_block();
        b.append_block_params_for_function_params(block);
        b.switch_to_block(block);
        b.seal_block(block);
        let args = b.block_params(block).to_vec();
        let results = body(module, &mut b, &args);
        b.ins().return_(&results);
        b.finalize(fc);
    }
    module.define_function(id, &mut ctx).unwrap();
    id
}

/// Declares a function to call (defined later, or imported).
pub fn declare<M: Module>(
    module: &mut M,
    name: &str,
    linkage: Linkage,
    params: &[Type],
    returns: &[Type],
) -> FuncId {
    let mut sig = module.make_signature();
    sig.params.extend(params.iter().map(|&t| AbiParam::new(t)));
    sig.returns
        .extend(returns.iter().map(|&t| AbiParam::new(t)));
    module.declare_function(name, linkage, &sig).unwrap()
}

/// Calls `callee` from the function being built.
pub fn call<M: Module>(
    module: &mut M,
    b: &mut FunctionBuilder,
    callee: FuncId,
    args: &[Value],
) -> Vec<Value> {
    let fref = module.declare_func_in_func(callee, b.func);
    let inst = b.ins().call(fref, args);
    b.inst_results(inst).to_vec()
}

pub extern "C" fn host_triple(x: i64) -> i64 {
    x * 3
}

pub static HOST_VALUE: i64 = 1234;

/// Resolves the host functions and data the program imports.
pub fn host_resolver() -> Box<ImportResolver<'static>> {
    Box::new(|import, _types| {
        let address = match import.name {
            "host_triple" => host_triple as *const () as usize,
            "host_value" => &HOST_VALUE as *const i64 as usize,
            _ => return Ok(None),
        };
        Ok(Some(Resolution {
            address,
            provider: None,
            keep_alive: None,
        }))
    })
}

/// The functions the tests call, in any backend: calls, recursion, data, read-only data,
/// pointers in data (to functions and to data), imported functions and data.
///
/// - `add(a, b)`, `fib(n)` (recursive), `bump()` (increments `counter`, returns it),
/// - `greeting_sum()`: 'h' + 'o' of the read-only "hello",
/// - `dispatch(i, x)`: calls `ops[i](x)`, a read-only table of two local functions
///   (`x * 2`, `x + 1`),
/// - `via_pointer()`: reads `counter` through `counter_ptr`, a pointer in writable data,
/// - `call_host(x)`: the imported `host_triple(x)` + 1; `host_data()`: imported `host_value`.
pub fn program<M: Module>(module: &mut M, bump_by: i64) {
    let ptr = module.target_config().pointer_type();
    assert_eq!(ptr, I64);
    let counter = module
        .declare_data("counter", Linkage::Export, true, false)
        .unwrap();
    let mut desc = DataDescription::new();
    desc.define_zeroinit(8);
    desc.set_align(8);
    module.define_data(counter, &desc).unwrap();

    let greeting = module
        .declare_data("greeting", Linkage::Local, false, false)
        .unwrap();
    let mut desc = DataDescription::new();
    desc.define(b"hello\0".to_vec().into_boxed_slice());
    module.define_data(greeting, &desc).unwrap();

    func(
        module,
        "add",
        Linkage::Export,
        &[I64, I64],
        &[I64],
        |_, b, a| vec![b.ins().iadd(a[0], a[1])],
    );

    let fib = declare(module, "fib", Linkage::Export, &[I64], &[I64]);
    {
        let mut sig = module.make_signature();
        sig.params.push(AbiParam::new(I64));
        sig.returns.push(AbiParam::new(I64));
        let fc = module.target_config();
        let mut ctx = module.make_context();
        ctx.func.signature = sig;
        let mut fctx = FunctionBuilderContext::new();
        let mut b = FunctionBuilder::new(&mut ctx.func, &mut fctx);
        let entry = b.create_block();
        let recurse = b.create_block();
        let done = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.append_block_param(done, I64);
        b.switch_to_block(entry);
        let n = b.block_params(entry)[0];
        let small = b.ins().icmp_imm_s(
            cranelift_codegen::ir::condcodes::IntCC::SignedLessThan,
            n,
            2,
        );
        b.ins().brif(small, done, &[n.into()], recurse, &[]);
        b.switch_to_block(recurse);
        let fref = module.declare_func_in_func(fib, b.func);
        let n1 = b.ins().iadd_imm_s(n, -1);
        let c1 = b.ins().call(fref, &[n1]);
        let r1 = b.inst_results(c1)[0];
        let n2 = b.ins().iadd_imm_s(n, -2);
        let c2 = b.ins().call(fref, &[n2]);
        let r2 = b.inst_results(c2)[0];
        let sum = b.ins().iadd(r1, r2);
        b.ins().jump(done, &[sum.into()]);
        b.switch_to_block(done);
        let r = b.block_params(done)[0];
        b.ins().return_(&[r]);
        b.seal_all_blocks();
        b.finalize(fc);
        module.define_function(fib, &mut ctx).unwrap();
    }

    func(module, "bump", Linkage::Export, &[], &[I64], |m, b, _| {
        let gv = m.declare_data_in_func(counter, b.func);
        let addr = b.ins().symbol_value(ptr, gv);
        let old = b.ins().load(I64, MemFlagsData::trusted(), addr, 0);
        let new = b.ins().iadd_imm_s(old, bump_by);
        b.ins().store(MemFlagsData::trusted(), new, addr, 0);
        vec![new]
    });

    func(
        module,
        "greeting_sum",
        Linkage::Export,
        &[],
        &[I64],
        |m, b, _| {
            let gv = m.declare_data_in_func(greeting, b.func);
            let addr = b.ins().symbol_value(ptr, gv);
            let h = b.ins().uload8(I64, MemFlagsData::trusted(), addr, 0);
            let o = b.ins().uload8(I64, MemFlagsData::trusted(), addr, 4);
            vec![b.ins().iadd(h, o)]
        },
    );

    let double = func(
        module,
        "double",
        Linkage::Local,
        &[I64],
        &[I64],
        |_, b, a| vec![b.ins().imul_imm_s(a[0], 2)],
    );
    let inc = func(module, "inc", Linkage::Local, &[I64], &[I64], |_, b, a| {
        vec![b.ins().iadd_imm_s(a[0], 1)]
    });
    let ops = module
        .declare_data("ops", Linkage::Local, false, false)
        .unwrap();
    let mut desc = DataDescription::new();
    // Bytes, not `define_zeroinit`: cranelift-object puts zero-initialised data in `.bss`
    // even when it holds pointers, which no loader can relocate (SmfModule moves it to data).
    desc.define(vec![0; 16].into_boxed_slice());
    desc.set_align(8);
    let f0 = module.declare_func_in_data(double, &mut desc);
    let f1 = module.declare_func_in_data(inc, &mut desc);
    desc.write_function_addr(0, f0);
    desc.write_function_addr(8, f1);
    module.define_data(ops, &desc).unwrap();
    func(
        module,
        "dispatch",
        Linkage::Export,
        &[I64, I64],
        &[I64],
        |m, b, a| {
            let gv = m.declare_data_in_func(ops, b.func);
            let base = b.ins().symbol_value(ptr, gv);
            let offset = b.ins().imul_imm_s(a[0], 8);
            let slot = b.ins().iadd(base, offset);
            let target = b.ins().load(ptr, MemFlagsData::trusted(), slot, 0);
            let mut sig = m.make_signature();
            sig.params.push(AbiParam::new(I64));
            sig.returns.push(AbiParam::new(I64));
            let sig = b.import_signature(sig);
            let inst = b.ins().call_indirect(sig, target, &[a[1]]);
            vec![b.inst_results(inst)[0]]
        },
    );

    let counter_ptr = module
        .declare_data("counter_ptr", Linkage::Export, true, false)
        .unwrap();
    let mut desc = DataDescription::new();
    desc.define(vec![0; 8].into_boxed_slice());
    desc.set_align(8);
    let gv = module.declare_data_in_data(counter, &mut desc);
    desc.write_data_addr(0, gv, 0);
    module.define_data(counter_ptr, &desc).unwrap();
    func(
        module,
        "via_pointer",
        Linkage::Export,
        &[],
        &[I64],
        |m, b, _| {
            let gv = m.declare_data_in_func(counter_ptr, b.func);
            let addr = b.ins().symbol_value(ptr, gv);
            let p = b.ins().load(ptr, MemFlagsData::trusted(), addr, 0);
            vec![b.ins().load(I64, MemFlagsData::trusted(), p, 0)]
        },
    );

    let host_triple = declare(module, "host_triple", Linkage::Import, &[I64], &[I64]);
    func(
        module,
        "call_host",
        Linkage::Export,
        &[I64],
        &[I64],
        |m, b, a| {
            let r = call(m, b, host_triple, &[a[0]])[0];
            vec![b.ins().iadd_imm_s(r, 1)]
        },
    );
    let host_value = module
        .declare_data("host_value", Linkage::Import, false, false)
        .unwrap();
    func(
        module,
        "host_data",
        Linkage::Export,
        &[],
        &[I64],
        |m, b, _| {
            let gv = m.declare_data_in_func(host_value, b.func);
            let addr = b.ins().symbol_value(ptr, gv);
            vec![b.ins().load(I64, MemFlagsData::trusted(), addr, 0)]
        },
    );
}
