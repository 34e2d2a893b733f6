//! Inputs the packer must refuse, with a message that names the file, section, symbol and
//! relocation type, and never with a panic.
//!
//! Built for Linux and for Windows, run under Wine (README, "Windows"): the system C
//! compiler (`cc`, a Linux program) is started through `smf_test_support::HostCommand`.

mod util;

use smf_pack::{Error, Input, Options, RelocationProblem};
use util::*;

fn message(inputs: &[Input]) -> String {
    pack_error(inputs, &Options::default())
}

#[test]
fn duplicate_strong_definitions_name_both_files() {
    let a = compile("first.o", "int dup(void) { return 1; }", &[]);
    let b = compile("second.o", "int dup(void) { return 2; }", &[]);
    let error = message(&[a, b]);
    assert_eq!(
        error,
        "symbol `dup` is defined in both first.o and second.o"
    );
}

#[test]
fn an_import_used_as_data_and_as_a_function_names_both_files() {
    let data = compile_with(
        "cc",
        "s",
        "reads.o",
        ".text\n.globl get\n.type get,@function\nget:\n\
         movq environ@GOTPCREL(%rip), %rax\nret\n.size get, .-get\n\
         .type environ,@object\n",
        &[],
    );
    let calls = compile(
        "calls.o",
        "extern void environ(void); void run(void) { environ(); }",
        &[],
    );
    for inputs in [[data.clone(), calls.clone()], [calls.clone(), data.clone()]] {
        let Err(error) = smf_pack::pack(&inputs, &Options::default()) else {
            panic!("packing succeeded");
        };
        assert!(
            matches!(error, Error::ImportKindConflict { .. }),
            "{error:?}"
        );
        assert_eq!(
            error.to_string(),
            "imported symbol `environ`: reads.o declares it a data object (STT_OBJECT) but \
             calls.o calls it as a function"
        );
    }
    // Declared a function without a call: the message says so.
    let declares = compile_with(
        "cc",
        "s",
        "declares.o",
        ".text\n.globl take\n.type take,@function\ntake:\n\
         movq environ@GOTPCREL(%rip), %rax\nret\n.size take, .-take\n\
         .type environ,@function\n",
        &[],
    );
    assert_eq!(
        message(&[declares, data]),
        "imported symbol `environ`: reads.o declares it a data object (STT_OBJECT) but \
         declares.o declares it a function (STT_FUNC)"
    );
    // The same clues are no conflict when an input defines the symbol: nothing is imported.
    let defines = compile("defines.o", "void environ(void) {}", &[]);
    let calls = compile(
        "calls.o",
        "extern void environ(void); void run(void) { environ(); }",
        &[],
    );
    let data = compile_with(
        "cc",
        "s",
        "reads.o",
        ".text\n.globl get\n.type get,@function\nget:\n\
         movq environ@GOTPCREL(%rip), %rax\nret\n.size get, .-get\n\
         .type environ,@object\n",
        &[],
    );
    let bytes = pack(&[data, calls, defines]);
    assert!(parse(&bytes).imports().is_empty());
}

#[test]
fn non_pic_absolute_address_asks_for_fpic() {
    let input = compile_with(
        "cc",
        "c",
        "nopic.o",
        "int counter; int *counter_address(void) { return &counter; }",
        &["-fno-pic", "-mcmodel=small", "-O2"],
    );
    let error = smf_pack::pack(&[input], &Options::default()).unwrap_err();
    let Error::Relocation(details) = &error else {
        panic!("unexpected error: {error}")
    };
    assert_eq!(details.problem, RelocationProblem::NotPositionIndependent);
    assert_eq!(details.r_type, "R_X86_64_32");
    assert_eq!(
        error.to_string(),
        format!(
            "nopic.o: section .text+{:#x}: relocation R_X86_64_32 against `counter` is not position-independent; recompile with -fPIC",
            details.offset
        )
    );
    // mov $counter, %eax: the field follows the one-byte opcode.
    assert_eq!(details.offset, 1);
}

#[test]
fn thread_locals_outside_the_module_and_local_exec_are_refused() {
    // A TLS variable no input defines would live in another module's or a native
    // library's block, which a module cannot address, whatever the access model.
    for (flags, r_type) in [
        (&[][..], "R_X86_64_TLSGD"),
        (&["-ftls-model=initial-exec"][..], "R_X86_64_GOTTPOFF"),
        (&["-mtls-dialect=gnu2"][..], "R_X86_64_GOTPC32_TLSDESC"),
    ] {
        let input = compile(
            "tlsref.o",
            "extern __thread int tv; int get_tv(void) { return tv; }",
            flags,
        );
        let error = message(&[input]);
        assert!(error.starts_with("tlsref.o: section .text+0x"), "{error}");
        assert!(
            error.contains(&format!(
                "relocation {r_type} against `tv`: thread-local variables of other modules or native libraries cannot be reached"
            )),
            "{error}"
        );
    }
    // Local-exec code has the offset from the thread pointer inside its instructions,
    // which would have to be written at load time; a shared library cannot use it either.
    let input = compile(
        "le.o",
        "__thread int tv = 3; int get_tv(void) { return tv; }",
        &["-ftls-model=local-exec"],
    );
    let error = message(&[input]);
    assert!(error.starts_with("le.o: section .text+0x"), "{error}");
    assert!(
        error.contains(
            "relocation R_X86_64_TPOFF32 against `tv`: the local-exec thread-local model cannot be used in a module"
        ),
        "{error}"
    );
}

#[test]
fn gcc_lto_objects_without_machine_code_are_refused_by_name() {
    let source = "int twice(int x) { return 2 * x; } int six(void) { return twice(3); }";
    let error = message(&[compile("lto.o", source, &["-flto"])]);
    assert_eq!(
        error,
        "lto.o: is a GCC LTO object (gcc -flto) that holds no machine code; compile it without \
         -flto, or with -ffat-lto-objects"
    );
    // A fat LTO object carries machine code too, which is what gets packed.
    let fat = compile("fat.o", source, &["-flto", "-ffat-lto-objects"]);
    let bytes = smf_pack::pack(&[fat], &smf_pack::Options::default()).unwrap();
    let module = smf_format::Module::parse(&bytes).unwrap();
    assert!(module.lookup("six").is_some());
}

#[test]
fn fpie_extern_data_cannot_reach_an_import() {
    let input = compile_with(
        "cc",
        "c",
        "pie.o",
        "extern int e; int f(void) { return e; }",
        &["-fPIE", "-O2"],
    );
    let error = message(&[input]);
    assert!(
        error.contains(
            "relocation R_X86_64_PC32 against imported `e` cannot reach a symbol outside the module; recompile with -fPIC"
        ),
        "{error}"
    );
    assert!(error.starts_with("pie.o: section .text+0x"), "{error}");
}

#[test]
fn entry_must_be_defined() {
    let input = || {
        compile(
            "lib.o",
            "int not_main(void) { return 0; } int data_item = 3;",
            &[],
        )
    };
    let options = Options {
        entry: Some("main".into()),
        ..Default::default()
    };
    assert_eq!(
        pack_error(&[input()], &options),
        "entry symbol `main` is not defined by any input"
    );
    let options = Options {
        entry: Some("data_item".into()),
        ..Default::default()
    };
    assert!(pack_error(&[input()], &options).contains("is not a function"));
}

#[test]
fn non_elf_input_is_refused() {
    let input = Input {
        name: "notes.txt".into(),
        data: b"hello, this is not an object".to_vec(),
    };
    let error = message(&[input]);
    assert!(
        error.starts_with("notes.txt: not an ELF object file"),
        "{error}"
    );
    let empty = Input {
        name: "empty.o".into(),
        data: Vec::new(),
    };
    assert!(message(&[empty]).starts_with("empty.o: "));
}

#[test]
fn truncated_objects_are_refused_without_panicking() {
    let input = compile("whole.o", "int g = 1; int f(void) { return g; }", &[]);
    let header_only = Input {
        name: "cut.o".into(),
        data: input.data[..40].to_vec(),
    };
    let error = message(&[header_only]);
    assert!(error.starts_with("cut.o: truncated ELF file"), "{error}");
    // Every prefix either packs or fails with a message naming the file.
    for len in 0..input.data.len() {
        let cut = Input {
            name: "cut.o".into(),
            data: input.data[..len].to_vec(),
        };
        if let Err(e) = smf_pack::pack(&[cut], &Options::default()) {
            assert!(e.to_string().starts_with("cut.o: "), "{len}: {e}");
        }
    }
}

#[test]
fn foreign_machines_and_file_types_are_refused() {
    let input = compile("x.o", "int f(void) { return 1; }", &[]);
    let patched = |name: &str, at: usize, bytes: &[u8]| {
        let mut data = input.data.clone();
        data[at..at + bytes.len()].copy_from_slice(bytes);
        Input {
            name: name.into(),
            data,
        }
    };
    // e_machine is the little-endian u16 at 18.
    let error = message(&[patched("riscv.o", 18, &243u16.to_le_bytes())]);
    assert!(
        error.starts_with("riscv.o: is an ELF object for EM_RISCV"),
        "{error}"
    );
    assert!(error.contains("not x86-64 or aarch64"), "{error}");
    let error = message(&[patched("i386.o", 18, &3u16.to_le_bytes())]);
    assert!(error.contains("EM_386"), "{error}");
    // A genuine 32-bit object (ELFCLASS32) is refused before anything else is read.
    let mut class32 = input.data.clone();
    class32[4] = 1;
    let error = message(&[Input {
        name: "c32.o".into(),
        data: class32,
    }]);
    assert!(
        error.starts_with("c32.o: is a 32-bit ELF object"),
        "{error}"
    );
    // e_type is the u16 at 16.
    let error = message(&[patched("a.out", 16, &2u16.to_le_bytes())]);
    assert!(
        error.contains("ET_EXEC") && error.contains("not a relocatable object"),
        "{error}"
    );
    let error = message(&[patched("lib.so", 16, &3u16.to_le_bytes())]);
    assert!(error.contains("ET_DYN"), "{error}");
}

#[test]
fn corrupt_indices_and_offsets_are_refused() {
    let input = compile("idx.o", "int g = 1; int f(void) { return g; }", &[]);
    // Point the symbol of the first .rela.text entry far outside the symbol table: r_info is
    // the u64 at entry offset 8, symbol in the high half.
    let rela = elf_section_header_offset(&input, ".rela.text");
    let rela_offset =
        u64::from_le_bytes(input.data[rela + 24..rela + 32].try_into().unwrap()) as usize;
    let mut data = input.data.clone();
    data[rela_offset + 12..rela_offset + 16].copy_from_slice(&0x00ff_ffffu32.to_le_bytes());
    let error = message(&[Input {
        name: "badsym.o".into(),
        data,
    }]);
    assert!(
        error.starts_with(
            "badsym.o: relocation section .rela.text: entry 0 refers to missing symbol index"
        ),
        "{error}"
    );

    // Make .rela.text apply to a section index that does not exist (sh_info at +44).
    let mut data = input.data.clone();
    data[rela + 44..rela + 48].copy_from_slice(&999u32.to_le_bytes());
    let error = message(&[Input {
        name: "badinfo.o".into(),
        data,
    }]);
    assert!(
        error.contains("applies to missing section index 999"),
        "{error}"
    );

    // Move .text's contents past the end of the file (sh_offset at +24).
    let text = elf_section_header_offset(&input, ".text");
    let mut data = input.data.clone();
    data[text + 24..text + 32].copy_from_slice(&0x10_0000u64.to_le_bytes());
    let error = message(&[Input {
        name: "badoff.o".into(),
        data,
    }]);
    assert!(
        error.starts_with("badoff.o: section .text: contents 0x100000+"),
        "{error}"
    );
    assert!(error.contains("run past the end of the file"), "{error}");

    // A relocation offset outside its section.
    let mut data = input.data.clone();
    data[rela_offset..rela_offset + 8].copy_from_slice(&0xffff_fff0u64.to_le_bytes());
    let error = message(&[Input {
        name: "badrel.o".into(),
        data,
    }]);
    assert!(
        error.starts_with("badrel.o: section .text+0xfffffff0: relocation"),
        "{error}"
    );
    assert!(
        error.contains("runs past the end of the section"),
        "{error}"
    );
}

#[test]
fn random_corruption_never_panics() {
    let input = compile(
        "fuzz.o",
        "static int x; int *p = &x; int puts(const char *); int f(void) { return puts(\"a\"); }\n\
         __attribute__((constructor)) void c(void) { x = 1; }",
        &[],
    );
    // A small deterministic xorshift: corrupt a few bytes at a time, all over the file.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    // Half of the time hit the section header table (at e_shoff, to the end of the file),
    // where offsets, sizes, types and links live.
    let shoff = u64::from_le_bytes(input.data[0x28..0x30].try_into().unwrap());
    for round in 0..3000 {
        let mut data = input.data.clone();
        for _ in 0..1 + next() % 4 {
            let at = if round % 2 == 0 {
                shoff + next() % (data.len() as u64 - shoff)
            } else {
                next() % data.len() as u64
            };
            data[at as usize] = next() as u8;
        }
        let result = smf_pack::pack(
            &[Input {
                name: "fuzz.o".into(),
                data,
            }],
            &Options::default(),
        );
        if let Ok(bytes) = result {
            smf_format::Module::parse(&bytes).expect("whatever packs also parses");
        }
    }
}

#[test]
fn absolute_address_in_code_is_refused() {
    // -mcmodel=large without -fPIC loads addresses with movabs and R_X86_64_64 in .text.
    let input = compile_with(
        "cc",
        "c",
        "large.o",
        "int counter; int *counter_address(void) { return &counter; }",
        &["-fno-pic", "-mcmodel=large", "-O2"],
    );
    let error = message(&[input]);
    assert!(
        error.starts_with("large.o: section .text+0x2: relocation R_X86_64_64 against `counter`"),
        "{error}"
    );
    assert!(
        error.contains("read-only code section; recompile with -fPIC"),
        "{error}"
    );
}

#[test]
fn unsupported_sections_are_named() {
    let input = compile(
        "ctors.o",
        "static void early(void) {}\n\
         void (*early_ptr)(void) __attribute__((section(\".ctors\"), used)) = early;",
        &[],
    );
    let error = message(&[input]);
    assert!(error.starts_with("ctors.o: section .ctors: "), "{error}");
    assert!(error.contains("not supported"), "{error}");

    let input = compile(
        "aligned.o",
        "int page_pair[4] __attribute__((aligned(8192)));",
        &[],
    );
    let error = message(&[input]);
    assert!(
        error.starts_with("aligned.o: section .bss: alignment 0x2000 exceeds"),
        "{error}"
    );
}

#[test]
fn an_indirect_function_whose_resolver_is_not_code_is_refused() {
    let input = compile(
        "bad_ifunc.o",
        "__asm__(\".data\\n.globl f\\n.type f, @gnu_indirect_function\\nf: .quad 0\\n.text\");\n\
         int f(void);\n\
         int call_f(void) { return f(); }\n",
        &[],
    );
    let error = message(&[input]);
    assert!(
        error.contains("bad_ifunc.o")
            && error.contains("`f`")
            && error.contains(
                "indirect function (STT_GNU_IFUNC) whose resolver is not in a code section"
            ),
        "{error}"
    );
}
