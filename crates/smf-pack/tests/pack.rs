//! Packing real objects compiled at test time, checked through `smf_format::Module::parse`.
//!
//! Built for Linux and for Windows, run under Wine (README, "Windows"): the system C
//! compiler (`cc`, a Linux program) is started through `smf_test_support::HostCommand`.

mod util;

use smf_format::{Binding, ImportKind, ModuleFlags, RelocKind, SectionKind, SymbolKind};
use smf_pack::Options;
use util::*;

#[test]
fn cross_object_calls_resolve_and_symbols_land_in_their_sections() {
    let a = compile(
        "a.o",
        "int helper(int); int twice_plus(int x) { return helper(x) + 1; }",
        &["-fno-optimize-sibling-calls"],
    );
    let b = compile(
        "b.o",
        "int helper(int x) { return x * 3; }\n\
         const char message[] = \"hello\";\n\
         int counter = 5;\n\
         int zeroed[100];\n",
        &[],
    );
    let bytes = pack(&[a, b]);
    let module = parse(&bytes);

    let helper = symbol(&module, "helper");
    let caller = symbol(&module, "twice_plus");
    for (name, kind) in [
        ("helper", SectionKind::Code),
        ("twice_plus", SectionKind::Code),
        ("message", SectionKind::RoData),
        ("counter", SectionKind::Data),
        ("zeroed", SectionKind::Bss),
    ] {
        let s = symbol(&module, name);
        assert_eq!(s.binding, Binding::Global, "{name}");
        assert_eq!(section_of(&module, &s).kind, kind, "{name}");
        assert!(module.lookup(name).is_some(), "{name} is exported");
    }
    assert_eq!(helper.kind, SymbolKind::Function);
    assert_eq!(symbol(&module, "counter").kind, SymbolKind::Data);
    assert_eq!(symbol(&module, "zeroed").size, 400);
    assert!(
        module.imports().is_empty(),
        "nothing is imported: {:?}",
        module.imports()
    );
    // The call in a.o reaches helper from b.o directly, not through a stub.
    assert!(
        call_targets(&module, &caller).contains(&helper.value),
        "call does not reach helper"
    );
    // Initialised data is copied.
    assert_eq!(read_i32(&module, symbol(&module, "counter").value), 5);
    assert_eq!(
        image_bytes(&module, symbol(&module, "message").value, 6),
        b"hello\0"
    );
}

#[test]
fn code_bytes_are_copied_from_the_object() {
    let input = compile("answer.o", "int answer(void) { return 42; }", &[]);
    let text = elf_section(&input, ".text").to_vec();
    let bytes = pack(&[input]);
    let module = parse(&bytes);
    let answer = symbol(&module, "answer");
    assert_eq!(answer.size as usize, text.len());
    assert_eq!(image_bytes(&module, answer.value, text.len()), text);
    assert_eq!(&text[..6], &[0xb8, 42, 0, 0, 0, 0xc3], "mov $42, %eax; ret");
}

#[test]
fn untyped_global_labels_in_code_are_functions() {
    // Hand-written assembly often omits `.type`: other modules call such a label, so it must
    // be exported as a function (a `func` import is refused by a data symbol), including at
    // the very end of the code, where only a function gets a trap byte.
    let input = compile_with(
        "cc",
        "s",
        "untyped.o",
        ".text
         .globl twice
twice:
lea (%rdi,%rdi), %rax
ret
         .globl tail
tail:
         .data
.globl table
table:
.quad 1
",
        &[],
    );
    let bytes = pack(&[input]);
    let module = parse(&bytes);
    assert_eq!(symbol(&module, "twice").kind, SymbolKind::Function);
    let tail = symbol(&module, "tail");
    assert_eq!(tail.kind, SymbolKind::Function);
    assert!(
        section_of(&module, &tail)
            .image_range()
            .contains(&tail.value)
    );
    assert_eq!(
        symbol(&module, "table").kind,
        SymbolKind::Data,
        "untyped data stays data"
    );
}

#[test]
fn a_function_of_size_zero_at_the_end_of_code_gets_a_trap_byte() {
    // `filler` takes the code up to a multiple of 16 (where import stubs would go), so that
    // `empty`, a function GCC emits with size 0 for a body it finds unreachable, ends the code.
    let input = compile_with(
        "cc",
        "s",
        "empty.o",
        ".text\n\
         .globl filler\n.type filler,@function\nfiller:\n.fill 15,1,0x90\nret\n.size filler,16\n\
         .globl empty\n.type empty,@function\nempty:\n.size empty,0\n",
        &[],
    );
    let bytes = pack(&[input]);
    let module = parse(&bytes);
    let empty = symbol(&module, "empty");
    assert_eq!(
        (empty.kind, empty.value, empty.size),
        (SymbolKind::Function, 16, 0)
    );
    let code = section_of(&module, &empty);
    assert!(
        code.image_range().contains(&empty.value),
        "empty at {:#x} is outside the code {:?}",
        empty.value,
        code.image_range()
    );
    assert_eq!(image_bytes(&module, empty.value, 1), [0xcc], "int3");

    // From C: GCC puts the empty body in its own (empty) section.
    let input = compile(
        "unreachable.o",
        "void nothing(void) { __builtin_unreachable(); }",
        &[],
    );
    let bytes = pack(&[input]);
    let module = parse(&bytes);
    let nothing = symbol(&module, "nothing");
    assert_eq!(image_bytes(&module, nothing.value, 1), [0xcc], "int3");
}

#[test]
fn pointer_to_static_in_data_becomes_relative64() {
    let input = compile(
        "p.o",
        "static int x; int *p = &x; int *get_x(void) { return &x; }",
        &[],
    );
    let bytes = pack(&[input]);
    let module = parse(&bytes);
    let p = symbol(&module, "p");
    let x = symbol(&module, "x");
    assert_eq!(
        x.binding,
        Binding::Local,
        "statics are listed but not exported"
    );
    assert!(module.lookup("x").is_none());
    assert_eq!(section_of(&module, &p).kind, SectionKind::Data);
    assert_eq!(section_of(&module, &x).kind, SectionKind::Bss);
    let relocs: Vec<_> = load_relocations(&module)
        .into_iter()
        .filter(|r| r.offset == p.value)
        .collect();
    assert_eq!(relocs.len(), 1, "{:?}", load_relocations(&module));
    assert_eq!(relocs[0].kind, RelocKind::Relative64);
    assert_eq!(relocs[0].addend, x.value as i64);
    assert_eq!(relocs[0].import, None);
    // The only load-time relocation: code needs none.
    assert_eq!(load_relocations(&module).len(), 1);
}

#[test]
fn call_to_puts_goes_through_a_stub_and_an_abs64_got_slot() {
    let input = compile(
        "hello.o",
        "int puts(const char *); int hello(void) { puts(\"hi\"); return 0; }",
        &[],
    );
    let bytes = pack(&[input]);
    let module = parse(&bytes);
    assert_eq!(module.imports().len(), 1);
    let import = &module.imports()[0];
    assert_eq!(import.name, "puts");
    assert_eq!(import.binding, Binding::Global);
    assert_eq!(
        import.kind,
        ImportKind::Function,
        "gcc leaves undefined functions untyped, but hello.o calls puts"
    );

    let hello = symbol(&module, "hello");
    let targets = call_targets(&module, &hello);
    let code = module
        .sections()
        .iter()
        .find(|s| s.kind == SectionKind::Code)
        .unwrap();
    let stub = *targets
        .iter()
        .find(|&&t| t >= hello.value + hello.size && code.image_range().contains(&t))
        .expect("hello calls a stub after the functions");
    let stub_bytes = image_bytes(&module, stub, 16);
    assert_eq!(&stub_bytes[..2], &[0xff, 0x25], "jmp *slot(%rip)");
    assert!(stub_bytes[6..].iter().all(|&b| b == 0xcc), "int3 padding");
    let slot = (stub as i64 + 6 + read_i32(&module, stub + 2) as i64) as u64;
    assert_eq!(
        module.section_at(slot).unwrap().kind,
        SectionKind::RelRo,
        "the GOT is in relro"
    );
    let reloc = load_relocations(&module)
        .into_iter()
        .find(|r| r.offset == slot)
        .expect("slot relocation");
    assert_eq!(reloc.kind, RelocKind::Abs64);
    assert_eq!(reloc.import, Some(0));
    assert_eq!(reloc.addend, 0);
    // No load-time relocation touches code.
    assert!(
        load_relocations(&module)
            .into_iter()
            .all(|r| module.section_at(r.offset).unwrap().kind != SectionKind::Code)
    );
}

/// The kind of each import of `module`, by name.
fn import_kinds(module: &smf_format::Module<'_>) -> Vec<(String, ImportKind)> {
    let mut kinds: Vec<_> = module
        .imports()
        .iter()
        .map(|i| (i.name.to_owned(), i.kind))
        .collect();
    kinds.sort();
    kinds
}

#[test]
fn import_kinds_say_what_the_objects_use() {
    // GCC types no undefined symbol, so calls (R_X86_64_PLT32) are what tells a function;
    // data read through the GOT says nothing, and taking puts' address too changes nothing.
    let input = compile(
        "uses.o",
        "#include <stdio.h>\n\
         extern char **environ;\n\
         void *puts_address(void) { return (void *)&puts; }\n\
         int first_char(void) { puts(\"hi\"); return environ[0][0]; }\n\
         FILE *out(void) { return stdout; }\n",
        &[],
    );
    let reads = elf_relocations(&input, ".rela.text");
    assert!(
        reads
            .iter()
            .any(|(_, t, name, _)| name == "puts" && *t == 4)
            && reads
                .iter()
                .any(|(_, t, name, _)| name == "puts" && *t != 4),
        "puts is both called (PLT32) and read from the GOT: {reads:?}"
    );
    let bytes = pack(&[input]);
    let module = parse(&bytes);
    assert_eq!(
        import_kinds(&module),
        [
            ("environ".to_owned(), ImportKind::Any),
            ("puts".to_owned(), ImportKind::Function),
            ("stdout".to_owned(), ImportKind::Any),
        ]
    );

    // Called, `environ` is a function import, which a loader can refuse to bind to libc's
    // data object of that name.
    let input = compile(
        "calls_environ.o",
        "extern void environ(void); void run(void) { environ(); }",
        &["-fno-optimize-sibling-calls"],
    );
    let module_bytes = pack(&[input]);
    let module = parse(&module_bytes);
    assert_eq!(
        import_kinds(&module),
        [("environ".to_owned(), ImportKind::Function)]
    );

    // An object that types its undefined symbols (assembly, other compilers) is believed:
    // STT_OBJECT is data, STT_FUNC a function even when only its address is taken.
    let input = compile_with(
        "cc",
        "s",
        "typed.o",
        ".text\n.globl get\n.type get,@function\nget:\n\
         movq environ@GOTPCREL(%rip), %rax\n\
         movq handler@GOTPCREL(%rip), %rax\n\
         ret\n.size get, .-get\n\
         .type environ,@object\n.type handler,@function\n",
        &[],
    );
    let bytes = pack(&[input]);
    let module = parse(&bytes);
    assert_eq!(
        import_kinds(&module),
        [
            ("environ".to_owned(), ImportKind::Data),
            ("handler".to_owned(), ImportKind::Function),
        ]
    );
}

#[test]
fn extern_data_with_fpic_is_read_through_a_got_slot() {
    let input = compile(
        "ext.o",
        "extern int ext; int get_ext(void) { return ext; }",
        &[],
    );
    let bytes = pack(&[input]);
    let module = parse(&bytes);
    assert_eq!(module.imports().len(), 1);
    assert_eq!(module.imports()[0].name, "ext");
    let get = symbol(&module, "get_ext");
    // mov ext@GOTPCREL(%rip), %rax: REX.W 8b 05 <rel32>, kept as a load from the slot.
    let code = image_bytes(&module, get.value, 7);
    assert_eq!(&code[..3], &[0x48, 0x8b, 0x05]);
    let slot = (get.value as i64 + 7 + read_i32(&module, get.value + 3) as i64) as u64;
    assert_eq!(module.section_at(slot).unwrap().kind, SectionKind::RelRo);
    let reloc = load_relocations(&module)
        .into_iter()
        .find(|r| r.offset == slot)
        .expect("slot relocation");
    assert_eq!(
        (reloc.kind, reloc.import, reloc.addend),
        (RelocKind::Abs64, Some(0), 0)
    );
}

#[test]
fn in_module_gotpcrelx_load_is_relaxed_to_lea() {
    let input = compile(
        "relax.o",
        "int gbar = 5; int load_gbar(void) { return gbar; }",
        &[],
    );
    // The object asks for a GOT load: mov gbar@GOTPCREL(%rip), %rax.
    let text = elf_section(&input, ".text").to_vec();
    assert_eq!(&text[..3], &[0x48, 0x8b, 0x05]);
    let bytes = pack(&[input]);
    let module = parse(&bytes);
    let load = symbol(&module, "load_gbar");
    let gbar = symbol(&module, "gbar");
    let code = image_bytes(&module, load.value, 7);
    assert_eq!(&code[..3], &[0x48, 0x8d, 0x05], "mov became lea");
    assert_eq!(
        (load.value as i64 + 7 + read_i32(&module, load.value + 3) as i64) as u64,
        gbar.value
    );
    assert!(
        load_relocations(&module).is_empty(),
        "no GOT slot: {:?}",
        load_relocations(&module)
    );
    assert!(
        module
            .sections()
            .iter()
            .all(|s| s.kind != SectionKind::RelRo),
        "no GOT section"
    );
    // The rest of the code is untouched.
    assert_eq!(
        image_bytes(&module, load.value + 7, text.len() - 7),
        text[7..]
    );
}

#[test]
fn weak_definition_loses_to_strong_in_either_order() {
    let weak = || {
        compile(
            "weak.o",
            "__attribute__((weak)) int pick(void) { return 1; }",
            &[],
        )
    };
    let strong = || compile("strong.o", "int pick(void) { return 2; }", &[]);
    for inputs in [[weak(), strong()], [strong(), weak()]] {
        let bytes = pack(&inputs);
        let module = parse(&bytes);
        let pick = symbol(&module, "pick");
        assert_eq!(pick.binding, Binding::Global);
        assert_eq!(
            image_bytes(&module, pick.value, 6),
            [0xb8, 2, 0, 0, 0, 0xc3],
            "the strong body"
        );
        assert_eq!(
            module
                .symbols()
                .to_vec()
                .unwrap()
                .iter()
                .filter(|s| s.name == "pick")
                .count(),
            1
        );
    }
    // Alone, a weak definition is exported as weak.
    let bytes = pack(&[weak()]);
    assert_eq!(symbol(&parse(&bytes), "pick").binding, Binding::Weak);
}

#[test]
fn common_symbols_merge_into_bss_with_the_largest_size() {
    let a = compile(
        "ca.o",
        "int shared_c[4]; int *a_ref(void) { return shared_c; }",
        &["-fcommon"],
    );
    let b = compile(
        "cb.o",
        "int shared_c[16]; int *b_ref(void) { return shared_c; }",
        &["-fcommon"],
    );
    let bytes = pack(&[a, b]);
    let module = parse(&bytes);
    let shared = symbol(&module, "shared_c");
    assert_eq!(shared.size, 64);
    assert_eq!(section_of(&module, &shared).kind, SectionKind::Bss);
    assert_eq!(shared.value % 4, 0);
    assert_eq!(
        module
            .symbols()
            .to_vec()
            .unwrap()
            .iter()
            .filter(|s| s.name == "shared_c")
            .count(),
        1
    );
    assert!(module.imports().is_empty());
}

#[test]
fn real_definition_beats_common() {
    let a = compile("ca.o", "int tentative[4];", &["-fcommon"]);
    let b = compile("cb.o", "int tentative[2] = {7, 8};", &[]);
    let bytes = pack(&[a, b]);
    let module = parse(&bytes);
    let s = symbol(&module, "tentative");
    assert_eq!(section_of(&module, &s).kind, SectionKind::Data);
    assert_eq!(read_i32(&module, s.value + 4), 8);
}

#[test]
fn weak_undefined_reference_becomes_weak_import() {
    let input = compile(
        "weakref.o",
        "extern int maybe(void) __attribute__((weak));\n\
         int call_maybe(void) { return maybe ? maybe() : 0; }",
        &[],
    );
    let bytes = pack(&[input]);
    let module = parse(&bytes);
    assert_eq!(module.imports().len(), 1);
    assert_eq!(module.imports()[0].name, "maybe");
    assert_eq!(module.imports()[0].binding, Binding::Weak);
}

#[test]
fn constructors_run_by_priority_and_destructors_in_reverse() {
    let input = compile(
        "ctors.o",
        "int order;\n\
         __attribute__((constructor)) void c_default(void) { order = order * 10 + 3; }\n\
         __attribute__((constructor(102))) void c_102(void) { order = order * 10 + 2; }\n\
         __attribute__((constructor(101))) void c_101(void) { order = order * 10 + 1; }\n\
         __attribute__((destructor)) void d_default(void) { order = 0; }\n\
         __attribute__((destructor(102))) void d_102(void) { order = 1; }\n\
         __attribute__((destructor(101))) void d_101(void) { order = 2; }\n",
        &[],
    );
    let bytes = pack(&[input]);
    let module = parse(&bytes);
    let at = |name| symbol(&module, name).value;
    assert_eq!(
        module.init_array(),
        [at("c_101"), at("c_102"), at("c_default")]
    );
    assert_eq!(
        module.fini_array(),
        [at("d_default"), at("d_102"), at("d_101")]
    );
}

#[test]
fn constructors_of_several_objects_keep_input_order_within_a_priority() {
    let a = compile("a.o", "__attribute__((constructor)) void ca(void) {}", &[]);
    let b = compile(
        "b.o",
        "__attribute__((constructor)) void cb(void) {}\n__attribute__((destructor)) void db(void) {}",
        &[],
    );
    let c = compile("c.o", "__attribute__((destructor)) void dc(void) {}", &[]);
    let bytes = pack(&[a, b, c]);
    let module = parse(&bytes);
    let at = |name| symbol(&module, name).value;
    assert_eq!(module.init_array(), [at("ca"), at("cb")]);
    assert_eq!(module.fini_array(), [at("dc"), at("db")]);
}

#[test]
fn entry_point_options_flags_and_source_hash() {
    let source = "int main(void) { return 0; }";
    let options = Options {
        entry: Some("main".into()),
        reloadable: true,
        needed: vec!["libc.so.6".into(), "libm.so.6".into()],
        ..Default::default()
    };
    let bytes = pack_with(&[compile("main.o", source, &[])], &options);
    let module = parse(&bytes);
    let header = module.header();
    assert_eq!(header.entry_point, Some(symbol(&module, "main").value));
    assert!(header.flags.contains(ModuleFlags::EXECUTABLE));
    assert!(header.flags.contains(ModuleFlags::RELOADABLE));
    assert!(header.flags.contains(ModuleFlags::PIC));
    assert_eq!(module.needed(), ["libc.so.6", "libm.so.6"]);

    let plain = pack(&[compile("main.o", source, &[])]);
    let plain_module = parse(&plain);
    assert_eq!(plain_module.header().entry_point, None);
    assert!(
        !plain_module
            .header()
            .flags
            .contains(ModuleFlags::RELOADABLE)
    );
    // Same inputs, same source hash; another name, another hash.
    assert_eq!(plain_module.header().source_hash, header.source_hash);
    assert_ne!(header.source_hash, 0);
    let renamed = pack(&[compile("other.o", source, &[])]);
    assert_ne!(parse(&renamed).header().source_hash, header.source_hash);
}

#[test]
fn eh_frame_is_concatenated_and_terminated() {
    let a = compile(
        "a.o",
        "int fa(int x) { return x + 1; }",
        &["-fasynchronous-unwind-tables"],
    );
    let b = compile(
        "b.o",
        "int fb(int x) { return x + 2; }",
        &["-fasynchronous-unwind-tables"],
    );
    let sizes = elf_section(&a, ".eh_frame").len() + elf_section(&b, ".eh_frame").len();
    let bytes = pack(&[a, b]);
    let module = parse(&bytes);
    let eh = module
        .sections()
        .iter()
        .find(|s| s.kind == SectionKind::EhFrame)
        .expect("eh_frame");
    assert_eq!(eh.mem_size as usize, sizes + 4);
    assert_eq!(&eh.data[sizes..], &[0, 0, 0, 0]);
    // The FDE of b's function (second record of b's part) covers fb: its pc_begin field is
    // PC-relative (the usual encoding of gcc's CIE augmentation "zR", pcrel|sdata4).
    let fb = symbol(&module, "fb");
    let mut found = false;
    let mut at = 0usize;
    while at + 4 <= eh.data.len() {
        let length = u32::from_le_bytes(eh.data[at..at + 4].try_into().unwrap()) as usize;
        if length == 0 {
            break;
        }
        let cie_id = u32::from_le_bytes(eh.data[at + 4..at + 8].try_into().unwrap());
        if cie_id != 0 {
            let field = eh.vaddr + at as u64 + 8;
            let pc_begin = (field as i64 + read_i32(&module, field) as i64) as u64;
            found |= pc_begin == fb.value;
        }
        at += 4 + length;
    }
    assert!(found, "an FDE covers fb");
}

#[test]
fn read_only_pointers_move_to_relro() {
    // Without -fPIC, gcc keeps an array of pointers in .rodata, with R_X86_64_64 relocations.
    let input = compile_with(
        "cc",
        "c",
        "names.o",
        "const char *const names[] = {\"a\", \"b\"};",
        &["-fno-pic", "-O2"],
    );
    let bytes = pack(&[input]);
    let module = parse(&bytes);
    let names = symbol(&module, "names");
    assert_eq!(section_of(&module, &names).kind, SectionKind::RelRo);
    let relocs: Vec<_> = load_relocations(&module)
        .into_iter()
        .filter(|r| names.value <= r.offset && r.offset < names.value + 16)
        .collect();
    assert_eq!(relocs.len(), 2);
    assert!(relocs.iter().all(|r| r.kind == RelocKind::Relative64));
    let first = relocs.iter().find(|r| r.offset == names.value).unwrap();
    assert_eq!(image_bytes(&module, first.addend as u64, 2), b"a\0");
}

#[test]
fn cxx_comdat_copies_are_merged() {
    let source = "inline int twice(int x) { static int calls; calls++; return 2 * x; }\n\
                  struct Counter { int n; Counter() : n(1) {} ~Counter() { n = 0; } };\n";
    let a = compile_with(
        "c++",
        "cc",
        "a.o",
        &format!("{source} Counter ca; int use_a(int v) {{ return twice(v) + ca.n; }}"),
        &["-fPIC", "-O1", "-fno-inline"],
    );
    let b = compile_with(
        "c++",
        "cc",
        "b.o",
        &format!("{source} int use_b(int v) {{ return twice(v); }}"),
        &["-fPIC", "-O1", "-fno-inline"],
    );
    let bytes = pack(&[a, b]);
    let module = parse(&bytes);
    assert_eq!(
        module
            .symbols()
            .to_vec()
            .unwrap()
            .iter()
            .filter(|s| s.name == "_Z5twicei")
            .count(),
        1
    );
    let twice = symbol(&module, "_Z5twicei");
    assert_eq!(twice.binding, Binding::Weak);
    // Both callers reach the one kept copy.
    for caller in ["_Z5use_ai", "_Z5use_bi"] {
        assert!(
            call_targets(&module, &symbol(&module, caller)).contains(&twice.value),
            "{caller}"
        );
    }
    // The global with a destructor registers it with __cxa_atexit(…, &__dso_handle), which
    // the packer provides as a hidden object.
    let dso = symbol(&module, "__dso_handle");
    assert_eq!(dso.binding, Binding::Local);
    assert_eq!(section_of(&module, &dso).kind, SectionKind::Data);
    assert!(module.imports().iter().any(|i| i.name == "__cxa_atexit"));
    assert!(module.lookup("__dso_handle").is_none());
}

#[test]
fn large_code_model_got_relative_relocations() {
    // -mcmodel=large -fPIC computes the GOT base with GOTPC64 and reaches everything from it:
    // GOTOFF64 for local data, GOT64 for GOT slots, PLTOFF64 for calls.
    let input = compile(
        "large.o",
        "static int x = 3; extern int ext; int gl = 4; int puts(const char *);\n\
         int f(void) { puts(\"hi\"); return x + ext + gl; }",
        &["-mcmodel=large"],
    );
    let relocs = elf_relocations(&input, ".rela.text");
    let bytes = pack(&[input]);
    let module = parse(&bytes);
    let f = symbol(&module, "f");
    let field = |offset: u64| f.value + offset;
    let types: Vec<u32> = relocs.iter().map(|r| r.1).collect();
    for t in [29, 25, 31, 27] {
        assert!(
            types.contains(&t),
            "the compiler emitted type {t}: {relocs:?}"
        );
    }
    // GOTPC64 = GOT + A - P, so GOT = P + value - A.
    let gotpc = relocs.iter().find(|r| r.1 == 29).unwrap();
    let got = (field(gotpc.0) as i64 + read_i64(&module, field(gotpc.0)) - gotpc.3) as u64;
    assert_eq!(got, symbol(&module, "_GLOBAL_OFFSET_TABLE_").value);
    for (offset, r_type, name, addend) in &relocs {
        let value = read_i64(&module, field(*offset));
        let target = (got as i64 + value) as u64;
        match r_type {
            // S + A - GOT: the string itself (the addend selects it inside its section).
            25 => assert_eq!(
                image_bytes(&module, target, 3),
                b"hi\0",
                "GOTOFF64 {name}{addend:+}"
            ),
            31 => assert_eq!(
                image_bytes(&module, target, 2),
                [0xff, 0x25],
                "PLTOFF64 {name} reaches its stub"
            ),
            27 => {
                let reloc = load_relocations(&module)
                    .into_iter()
                    .find(|r| r.offset == target)
                    .expect("GOT slot");
                match name.as_str() {
                    "ext" => assert_eq!(reloc.kind, RelocKind::Abs64),
                    "gl" => {
                        assert_eq!(reloc.kind, RelocKind::Relative64);
                        assert_eq!(reloc.addend as u64, symbol(&module, "gl").value);
                    }
                    other => panic!("unexpected GOT64 against {other}"),
                }
            }
            _ => {}
        }
    }
}

/// An indirect function (`STT_GNU_IFUNC`) is its stub: direct calls and the exported symbol
/// land on `jmp *slot(%rip)`, and the slot gets an `irelative` relocation naming the resolver.
#[test]
fn indirect_function_calls_go_through_a_stub_and_an_irelative_slot() {
    let input = compile(
        "ifunc.o",
        "static int twice(int x) { return 2 * x; }\n\
         static int (*pick(void))(int) { return twice; }\n\
         int doubled(int x) __attribute__((ifunc(\"pick\")));\n\
         int call_doubled(int x) { return doubled(x) + 1; }\n\
         int (*const doubled_ptr)(int) = doubled;\n",
        &["-O2"],
    );
    let bytes = pack(&[input]);
    let module = parse(&bytes);
    let exported = symbol(&module, "doubled");
    assert_eq!(exported.kind, SymbolKind::Function);
    let pick = symbol(&module, "pick");
    let stub = exported.value;
    assert_ne!(stub, pick.value, "the symbol is not its resolver");
    let stub_bytes = image_bytes(&module, stub, 16);
    assert_eq!(&stub_bytes[..2], &[0xff, 0x25], "jmp *slot(%rip)");
    let caller = symbol(&module, "call_doubled");
    assert!(
        call_targets(&module, &caller).contains(&stub),
        "a direct call reaches the stub"
    );
    let slot = (stub as i64 + 6 + read_i32(&module, stub + 2) as i64) as u64;
    let relocs = load_relocations(&module);
    let irelative: Vec<_> = relocs
        .iter()
        .filter(|r| r.kind == RelocKind::Irelative)
        .collect();
    assert_eq!(irelative.len(), 1, "one slot per indirect function");
    assert_eq!(irelative[0].offset, slot);
    assert_eq!(
        irelative[0].addend, pick.value as i64,
        "the slot calls the resolver"
    );
    // The pointer in data holds the stub too: one address for the function everywhere.
    let pointer = symbol(&module, "doubled_ptr");
    let relative = relocs
        .iter()
        .find(|r| r.offset == pointer.value)
        .map(|r| (r.kind, r.addend));
    assert_eq!(relative, Some((RelocKind::Relative64, stub as i64)));
}
