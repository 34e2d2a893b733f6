//! What clang emits where gcc differs: `.eh_frame` typed `SHT_X86_64_UNWIND`, `.llvm_addrsig`
//! sections, `-fno-plt` calls to `__tls_get_addr` through the GOT, and `-flto` bitcode.
//! Each test checks first that clang still emits what it is about, then what the packer made
//! of it. Skipped, with a note, when clang is not on PATH.
//!
//! Not built for Windows: the tests compile their inputs with the system C compiler (`cc`,
//! a Linux program under Wine, whose exit status a Windows process cannot get). The packer's
//! own unit tests run for Windows (README, "Windows").
#![cfg(unix)]

mod util;

use smf_format::{Module, RelocKind, SectionKind};
use smf_pack::Options;
use util::*;

const R_X86_64_TLSGD: u32 = 19;
const R_X86_64_TLSLD: u32 = 20;
const R_X86_64_GOTPCRELX: u32 = 41;
const R_X86_64_REX_GOTPCRELX: u32 = 42;
const SHT_X86_64_UNWIND: u32 = 0x7000_0001;
const SHT_LLVM_ADDRSIG: u32 = 0x6fff_4c03;

/// The image offset the 32-bit PC-relative field at `place` reaches (its addend is -4).
fn reached(module: &Module<'_>, place: u64) -> u64 {
    (place as i64 + 4 + i64::from(read_i32(module, place))) as u64
}

/// The load-time relocation at `offset`, which must exist.
fn load_reloc(module: &Module<'_>, offset: u64) -> smf_format::Reloc {
    load_relocations(module)
        .into_iter()
        .find(|r| r.offset == offset)
        .unwrap_or_else(|| panic!("no load-time relocation at {offset:#x}"))
}

fn import_index(module: &Module<'_>, name: &str) -> u32 {
    module
        .imports()
        .iter()
        .position(|i| i.name == name)
        .unwrap_or_else(|| panic!("{name} is not imported")) as u32
}

#[test]
#[cfg_attr(no_clang, ignore = "skipped: clang not found")]
fn clang_unwind_tables_addrsig_and_got_loads() {
    let Some(clang) = clang() else { return };
    let source = "
        extern long ext;
        long counter = 5;
        static const double scale[2] = {1.5, 2.5};
        long *counter_address(void) { return &counter; }
        long read_ext(void) { return ext; }
        double pick(int i) { return scale[i & 1]; }
        static int triple(int x) { return x * 3; }
        int (*get_triple(void))(int) { return triple; }
    ";
    let input = compile_with(clang, "c", "clang.o", source, &["-fPIC", "-O2"]);
    assert_eq!(elf_section_type(&input, ".eh_frame"), SHT_X86_64_UNWIND);
    assert_eq!(elf_section_type(&input, ".llvm_addrsig"), SHT_LLVM_ADDRSIG);
    let relocs = elf_relocations(&input, ".rela.text");
    let text_offset_in_object = elf_symbol_value(&input, "counter_address");
    let got_load = |name: &str| {
        relocs
            .iter()
            .find(|r| r.1 == R_X86_64_REX_GOTPCRELX && r.2 == name)
            .unwrap_or_else(|| panic!("clang loads {name} from the GOT: {relocs:?}"))
            .0
    };
    let (counter_field, ext_field) = (got_load("counter"), got_load("ext"));

    let bytes = pack(&[input]);
    let module = parse(&bytes);
    let text = symbol(&module, "counter_address").value - text_offset_in_object;

    // `mov counter@GOTPCREL(%rip)` of a variable in the module became `lea counter(%rip)`.
    let place = text + counter_field;
    assert_eq!(image_bytes(&module, place - 2, 1), [0x8d], "relaxed to lea");
    assert_eq!(reached(&module, place), symbol(&module, "counter").value);
    // The imported one is still loaded from a GOT slot the loader fills.
    let place = text + ext_field;
    assert_eq!(image_bytes(&module, place - 2, 1), [0x8b], "still a load");
    let slot = load_reloc(&module, reached(&module, place));
    assert_eq!(slot.kind, RelocKind::Abs64);
    assert_eq!(slot.import, Some(import_index(&module, "ext")));

    // The SHT_X86_64_UNWIND section is the module's eh_frame: every function has an FDE
    // (clang's CIE uses pcrel|sdata4 pointers too), and the table ends with a terminator.
    let eh = module
        .loaded_sections()
        .find(|s| s.kind == SectionKind::EhFrame)
        .expect("an eh_frame section");
    assert!(eh.data.ends_with(&[0, 0, 0, 0]));
    let mut covered = Vec::new();
    let mut at = 0usize;
    while at + 8 <= eh.data.len() {
        let length = u32::from_le_bytes(eh.data[at..at + 4].try_into().unwrap()) as usize;
        if length == 0 {
            break;
        }
        let cie_pointer = u32::from_le_bytes(eh.data[at + 4..at + 8].try_into().unwrap());
        if cie_pointer != 0 {
            covered.push(reached(&module, eh.vaddr + at as u64 + 8) - 4);
        }
        at += 4 + length;
    }
    for function in [
        "counter_address",
        "read_ext",
        "pick",
        "get_triple",
        "triple",
    ] {
        assert!(
            covered.contains(&symbol(&module, function).value),
            "an FDE covers {function}"
        );
    }
}

#[test]
#[cfg_attr(no_clang, ignore = "skipped: clang not found")]
fn clang_fno_plt_calls_tls_get_addr_through_the_got() {
    let Some(clang) = clang() else { return };
    let source = "
        __thread long tv = 7;
        static __thread long a, b;
        long *tv_address(void) { return &tv; }
        long mix(long x) { a += x; b -= x; return a * b; }
    ";
    let input = compile_with(clang, "c", "tls.o", source, &["-fPIC", "-O2", "-fno-plt"]);
    let relocs = elf_relocations(&input, ".rela.text");
    let of_type = |t: u32, name: &str| -> Vec<u64> {
        relocs
            .iter()
            .filter(|r| r.1 == t && r.2 == name)
            .map(|r| r.0)
            .collect()
    };
    let calls = of_type(R_X86_64_GOTPCRELX, "__tls_get_addr");
    let general = of_type(R_X86_64_TLSGD, "tv");
    let local: Vec<u64> = relocs
        .iter()
        .filter(|r| r.1 == R_X86_64_TLSLD)
        .map(|r| r.0)
        .collect();
    assert!(
        calls.len() >= 2 && !general.is_empty() && !local.is_empty(),
        "clang -fno-plt calls *__tls_get_addr@GOTPCREL(%rip) for both dynamic models: {relocs:?}"
    );
    let text_offset_in_object = elf_symbol_value(&input, "tv_address");

    let bytes = pack(&[input]);
    let module = parse(&bytes);
    let text = symbol(&module, "tv_address").value - text_offset_in_object;
    let tls = module
        .loaded_sections()
        .find(|s| s.kind == SectionKind::Tls)
        .expect("a tls section");

    // Each `call *__tls_get_addr@GOTPCREL(%rip)` stays an indirect call, through the GOT slot
    // of the import the loader resolves to its own __tls_get_addr.
    let import = import_index(&module, "__tls_get_addr");
    for field in calls {
        let place = text + field;
        assert_eq!(image_bytes(&module, place - 2, 2), [0xff, 0x15]);
        let slot = load_reloc(&module, reached(&module, place));
        assert_eq!(slot.kind, RelocKind::Abs64);
        assert_eq!(slot.import, Some(import));
    }
    // The argument is a tls_index pair: the module handle at load time, then the offset.
    for field in general {
        let pair = reached(&module, text + field);
        assert_eq!(load_reloc(&module, pair).kind, RelocKind::TlsModule);
        assert_eq!(
            read_u64(&module, pair + 8),
            symbol(&module, "tv").value - tls.vaddr
        );
    }
    for field in local {
        let pair = reached(&module, text + field);
        assert_eq!(load_reloc(&module, pair).kind, RelocKind::TlsModule);
        assert_eq!(read_u64(&module, pair + 8), 0, "local-dynamic base");
    }
}

#[test]
#[cfg_attr(no_clang, ignore = "skipped: clang not found")]
fn clang_flto_bitcode_is_refused_naming_the_flag() {
    let Some(clang) = clang() else { return };
    for lto in ["-flto", "-flto=thin"] {
        let input = compile_with(
            clang,
            "c",
            "lto.o",
            "int f(void) { return 1; }",
            &["-fPIC", "-O2", lto],
        );
        assert_eq!(
            pack_error(&[input], &Options::default()),
            "lto.o: is LLVM bitcode (clang -flto), not an ELF object; compile it without -flto",
            "{lto}"
        );
    }
}
