//! A tiny expression language compiled with Cranelift into an SMF module and hot swapped.
//!
//! ```text
//! def NAME(PARAMS) = EXPR   define or redefine a function: the module is recompiled and
//!                           swapped in; its counter `ticks` keeps its value
//! EXPR                      evaluate (compiled into a second module that calls the first)
//! last                      what the background thread's latest call of `step()` returned
//! sleep MS                  wait
//! ```
//!
//! EXPR: integers, `+ - * /` (division by 0 gives 0), parentheses, parameters, calls
//! `f(a, b)`, `ticks` (the module's counter) and `tick()` (adds one to it and returns it).
//! Once `step()` is defined, a background thread calls it every millisecond through a
//! `Current` handle, across every swap.
//!
//! `cargo run -p smf-cranelift --example calc`

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{AbiParam, InstBuilder, MemFlagsData, Value, types::I64};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_module::{DataDescription, DataId, FuncId, Linkage, Module};
use simple_loader::Registry;
use smf_cranelift::{SmfBuilder, SmfModule};

#[derive(Debug, Clone)]
enum Expr {
    Num(i64),
    Var(String),
    Call(String, Vec<Expr>),
    Bin(char, Box<Expr>, Box<Expr>),
    /// The body of `tick()`: `ticks = ticks + 1`.
    Tick,
}

/// Recursive descent over the characters of one line.
struct Parser<'a> {
    s: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn skip(&mut self) {
        while self.s.get(self.at).is_some_and(u8::is_ascii_whitespace) {
            self.at += 1;
        }
    }
    fn eat(&mut self, c: u8) -> bool {
        self.skip();
        let yes = self.s.get(self.at) == Some(&c);
        self.at += usize::from(yes);
        yes
    }
    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(format!(
                "expected `{}` at column {}",
                c as char,
                self.at + 1
            ))
        }
    }
    fn ident(&mut self) -> Option<String> {
        self.skip();
        let start = self.at;
        while self
            .s
            .get(self.at)
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
        {
            self.at += 1;
        }
        let word = std::str::from_utf8(&self.s[start..self.at]).ok()?;
        (!word.is_empty() && !word.as_bytes()[0].is_ascii_digit())
            .then(|| word.to_owned())
            .or_else(|| {
                self.at = start;
                None
            })
    }
    fn expr(&mut self) -> Result<Expr, String> {
        let mut left = self.term()?;
        while let Some(op) = [b'+', b'-'].into_iter().find(|&c| self.eat(c)) {
            left = Expr::Bin(op as char, Box::new(left), Box::new(self.term()?));
        }
        Ok(left)
    }
    fn term(&mut self) -> Result<Expr, String> {
        let mut left = self.factor()?;
        while let Some(op) = [b'*', b'/'].into_iter().find(|&c| self.eat(c)) {
            left = Expr::Bin(op as char, Box::new(left), Box::new(self.factor()?));
        }
        Ok(left)
    }
    fn factor(&mut self) -> Result<Expr, String> {
        if self.eat(b'(') {
            let e = self.expr()?;
            self.expect(b')')?;
            return Ok(e);
        }
        if self.eat(b'-') {
            return Ok(Expr::Bin(
                '-',
                Box::new(Expr::Num(0)),
                Box::new(self.factor()?),
            ));
        }
        if let Some(name) = self.ident() {
            if !self.eat(b'(') {
                return Ok(Expr::Var(name));
            }
            let mut args = Vec::new();
            if !self.eat(b')') {
                loop {
                    args.push(self.expr()?);
                    if self.eat(b')') {
                        break;
                    }
                    self.expect(b',')?;
                }
            }
            return Ok(Expr::Call(name, args));
        }
        self.skip();
        let start = self.at;
        while self.s.get(self.at).is_some_and(u8::is_ascii_digit) {
            self.at += 1;
        }
        std::str::from_utf8(&self.s[start..self.at])
            .unwrap_or("")
            .parse()
            .map(Expr::Num)
            .map_err(|_| format!("expected a number, a name or `(` at column {}", start + 1))
    }
    fn end(&mut self) -> Result<(), String> {
        self.skip();
        if self.at == self.s.len() {
            Ok(())
        } else {
            Err(format!("unexpected text at column {}", self.at + 1))
        }
    }
}

/// `def NAME(PARAMS) = EXPR`.
fn parse_def(line: &str) -> Result<(String, Vec<String>, Expr), String> {
    let mut p = Parser {
        s: line.as_bytes(),
        at: 0,
    };
    let name = p.ident().ok_or("expected a function name after `def`")?;
    p.expect(b'(')?;
    let mut params = Vec::new();
    if !p.eat(b')') {
        loop {
            params.push(p.ident().ok_or("expected a parameter name")?);
            if p.eat(b')') {
                break;
            }
            p.expect(b',')?;
        }
    }
    p.expect(b'=')?;
    let body = p.expr()?;
    p.end()?;
    Ok((name, params, body))
}

type Defs = BTreeMap<String, (Vec<String>, Expr)>;

fn isa() -> cranelift_codegen::isa::OwnedTargetIsa {
    let mut flags = settings::builder();
    flags.set("is_pic", "true").unwrap();
    cranelift_native::builder()
        .unwrap()
        .finish(settings::Flags::new(flags))
        .unwrap()
}

/// Compiles `body` as function `id` with `params`; names resolve to parameters, `ticks`,
/// `tick()` and the functions in `funcs`.
fn define(
    m: &mut SmfModule,
    id: FuncId,
    params: &[String],
    body: &Expr,
    funcs: &BTreeMap<String, (FuncId, usize)>,
    ticks: DataId,
) -> Result<(), String> {
    let mut ctx = m.make_context();
    ctx.func.signature = m.declarations().get_function_decl(id).signature.clone();
    let mut fctx = FunctionBuilderContext::new();
    let mut b = FunctionBuilder::new(&mut ctx.func, &mut fctx);
    let block = b.create_block();
    b.append_block_params_for_function_params(block);
    b.switch_to_block(block);
    b.seal_block(block);
    let args: BTreeMap<&str, Value> = params
        .iter()
        .map(String::as_str)
        .zip(b.block_params(block).to_vec())
        .collect();
    fn lower(
        e: &Expr,
        b: &mut FunctionBuilder,
        m: &mut SmfModule,
        args: &BTreeMap<&str, Value>,
        funcs: &BTreeMap<String, (FuncId, usize)>,
        ticks: DataId,
    ) -> Result<Value, String> {
        Ok(match e {
            Expr::Num(n) => b.ins().iconst(I64, *n),
            Expr::Var(v) if v == "ticks" => {
                let gv = m.declare_data_in_func(ticks, b.func);
                let addr = b.ins().symbol_value(I64, gv);
                b.ins().load(I64, MemFlagsData::trusted(), addr, 0)
            }
            Expr::Tick => {
                let gv = m.declare_data_in_func(ticks, b.func);
                let addr = b.ins().symbol_value(I64, gv);
                let old = b.ins().load(I64, MemFlagsData::trusted(), addr, 0);
                let new = b.ins().iadd_imm_s(old, 1);
                b.ins().store(MemFlagsData::trusted(), new, addr, 0);
                new
            }
            Expr::Var(v) => *args.get(v.as_str()).ok_or(format!("unknown name `{v}`"))?,
            Expr::Call(f, call_args) => {
                let &(id, arity) = funcs.get(f).ok_or(format!("unknown function `{f}`"))?;
                if arity != call_args.len() {
                    return Err(format!(
                        "`{f}` takes {arity} arguments, not {}",
                        call_args.len()
                    ));
                }
                let values = call_args
                    .iter()
                    .map(|a| lower(a, b, m, args, funcs, ticks))
                    .collect::<Result<Vec<_>, _>>()?;
                let fref = m.declare_func_in_func(id, b.func);
                let inst = b.ins().call(fref, &values);
                b.inst_results(inst)[0]
            }
            Expr::Bin(op, l, r) => {
                let (l, r) = (
                    lower(l, b, m, args, funcs, ticks)?,
                    lower(r, b, m, args, funcs, ticks)?,
                );
                match op {
                    '+' => b.ins().iadd(l, r),
                    '-' => b.ins().isub(l, r),
                    '*' => b.ins().imul(l, r),
                    _ => {
                        // Never a trap: x / 0 is 0 and x / -1 is -x (wrapping).
                        let (zero, one) = (b.ins().iconst(I64, 0), b.ins().iconst(I64, 1));
                        let is_zero = b.ins().icmp_imm_s(IntCC::Equal, r, 0);
                        let is_minus_one = b.ins().icmp_imm_s(IntCC::Equal, r, -1);
                        let special = b.ins().bor(is_zero, is_minus_one);
                        let divisor = b.ins().select(special, one, r);
                        let q = b.ins().sdiv(l, divisor);
                        let negated = b.ins().ineg(l);
                        let q = b.ins().select(is_minus_one, negated, q);
                        b.ins().select(is_zero, zero, q)
                    }
                }
            }
        })
    }
    let v = lower(body, &mut b, m, &args, funcs, ticks)?;
    b.ins().return_(&[v]);
    b.finalize(m.target_config());
    m.define_function(id, &mut ctx).map_err(|e| e.to_string())
}

fn signature(m: &SmfModule, arity: usize) -> cranelift_codegen::ir::Signature {
    let mut sig = m.make_signature();
    sig.params.extend((0..arity).map(|_| AbiParam::new(I64)));
    sig.returns.push(AbiParam::new(I64));
    sig
}

/// The module holding every definition, `ticks` and `tick()`.
fn compile_defs(defs: &Defs) -> Result<Vec<u8>, String> {
    let mut builder = SmfBuilder::new(isa(), "calc", cranelift_module::default_libcall_names())
        .map_err(|e| e.to_string())?;
    builder.reloadable(true);
    let mut m = SmfModule::new(builder);
    let ticks = m
        .declare_data("ticks", Linkage::Export, true, false)
        .map_err(|e| e.to_string())?;
    let mut data = DataDescription::new();
    data.define_zeroinit(8);
    data.set_align(8);
    m.define_data(ticks, &data).map_err(|e| e.to_string())?;
    let mut funcs = BTreeMap::new();
    let tick = m
        .declare_function("tick", Linkage::Export, &signature(&m, 0))
        .map_err(|e| e.to_string())?;
    funcs.insert("tick".to_owned(), (tick, 0));
    for (name, (params, _)) in defs {
        let id = m
            .declare_function(name, Linkage::Export, &signature(&m, params.len()))
            .map_err(|e| e.to_string())?;
        funcs.insert(name.clone(), (id, params.len()));
    }
    define(&mut m, tick, &[], &Expr::Tick, &funcs, ticks)?;
    for (name, (params, body)) in defs {
        define(&mut m, funcs[name].0, params, body, &funcs, ticks)?;
    }
    m.finish().emit().map_err(|e| e.to_string())
}

/// A module with `__eval() = expr`, calling into `calc` through imports.
fn compile_eval(expr: &Expr, defs: &Defs) -> Result<Vec<u8>, String> {
    let mut m = SmfModule::new(
        SmfBuilder::new(isa(), "eval", cranelift_module::default_libcall_names())
            .map_err(|e| e.to_string())?,
    );
    let ticks = m
        .declare_data("ticks", Linkage::Import, true, false)
        .map_err(|e| e.to_string())?;
    let mut funcs = BTreeMap::new();
    let tick = m
        .declare_function("tick", Linkage::Import, &signature(&m, 0))
        .map_err(|e| e.to_string())?;
    funcs.insert("tick".to_owned(), (tick, 0));
    for (name, (params, _)) in defs {
        let id = m
            .declare_function(name, Linkage::Import, &signature(&m, params.len()))
            .map_err(|e| e.to_string())?;
        funcs.insert(name.clone(), (id, params.len()));
    }
    let id = m
        .declare_function("__eval", Linkage::Export, &signature(&m, 0))
        .map_err(|e| e.to_string())?;
    define(&mut m, id, &[], expr, &funcs, ticks)?;
    m.finish().emit().map_err(|e| e.to_string())
}

fn main() {
    let registry = Arc::new(Registry::new());
    let mut defs = Defs::new();
    let last = Arc::new(AtomicI64::new(0));
    let mut background_started = false;
    let interactive = std::io::stdin().is_terminal();
    // SAFETY: every module is compiled here from the language above.
    unsafe {
        registry
            .load_bytes("calc", compile_defs(&defs).unwrap())
            .unwrap()
    };
    let stdin = std::io::stdin();
    loop {
        if interactive {
            print!("> ");
            std::io::stdout().flush().ok();
        }
        let mut line = String::new();
        if stdin.lock().read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if line == "last" {
            println!("last step() = {}", last.load(Ordering::Relaxed));
        } else if let Some(ms) = line.strip_prefix("sleep ") {
            std::thread::sleep(std::time::Duration::from_millis(
                ms.trim().parse().unwrap_or(0),
            ));
        } else if let Some(def) = line.strip_prefix("def ") {
            let (name, params, body) = match parse_def(def) {
                Ok(d) => d,
                Err(e) => {
                    println!("error: {e}");
                    continue;
                }
            };
            if ["tick", "ticks"].contains(&name.as_str()) || name.starts_with("__") {
                println!("error: `{name}` is built in");
                continue;
            }
            let old = defs.insert(name.clone(), (params, body));
            let swapped = compile_defs(&defs).and_then(|bytes| {
                // SAFETY: as above.
                unsafe { registry.reload_bytes("calc", bytes) }.map_err(|e| e.to_string())
            });
            match swapped {
                Ok(report) => println!(
                    "defined {name}: calc version {}, kept {}",
                    report.version,
                    report.kept.join(", ")
                ),
                Err(e) => {
                    println!("error: {e}");
                    match old {
                        Some(old) => defs.insert(name.clone(), old),
                        None => defs.remove(&name),
                    };
                    continue;
                }
            }
            if name == "step" && defs["step"].0.is_empty() && !background_started {
                background_started = true;
                // SAFETY: `step` is `() -> i64` in every version: its arity is checked above.
                let step =
                    unsafe { registry.current_named::<extern "C" fn() -> i64>("calc", "step") }
                        .unwrap();
                let last = Arc::clone(&last);
                std::thread::spawn(move || {
                    loop {
                        last.store((*step.pin())(), Ordering::Relaxed);
                        std::thread::sleep(std::time::Duration::from_millis(1));
                    }
                });
            }
        } else {
            let mut p = Parser {
                s: line.as_bytes(),
                at: 0,
            };
            let result = p
                .expr()
                .and_then(|e| p.end().map(|()| e))
                .and_then(|e| compile_eval(&e, &defs))
                .and_then(|bytes| {
                    // SAFETY: as above.
                    let module =
                        unsafe { registry.load_bytes("eval", bytes) }.map_err(|e| e.to_string())?;
                    // SAFETY: `__eval` is `() -> i64`.
                    let eval = unsafe { module.get::<extern "C" fn() -> i64>("__eval") }
                        .map_err(|e| e.to_string())?;
                    let value = {
                        let _pin = registry.pin();
                        eval()
                    };
                    registry.unload_named("eval");
                    Ok(value)
                });
            match result {
                Ok(v) => println!("{v}"),
                Err(e) => println!("error: {e}"),
            }
        }
    }
}
