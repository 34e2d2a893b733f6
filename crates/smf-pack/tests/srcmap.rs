//! The source map the packer makes from the DWARF line programs of `-g` objects
//! (docs/FORMAT.md, *Source map*), checked on objects compiled by the system compilers.
//! End-to-end use (crash reports, gdb, `smf inspect --lines`) is in
//! `crates/smf/tests/source_lines.rs`.
//!
//! Built for Linux and for Windows, run under Wine (README, "Windows"): the system C
//! compiler (`cc`, a Linux program) is started through `smf_test_support::HostCommand`.

mod util;

use smf_format::{ModuleFlags, SourceMap};
use util::*;

fn source_map<'a>(module: &smf_format::Module<'a>) -> SourceMap<'a> {
    module
        .source_map()
        .expect("a valid source map")
        .expect("a source map")
}

/// C++ inline functions are COMDAT groups: both objects define `twice`, the link keeps the
/// first object's copy and drops the second's, whose line sequence must go with it (its
/// address relocation points into a section the layout never placed).
#[test]
fn lines_of_dropped_comdat_copies_are_left_out() {
    let a = compile_with(
        "c++",
        "cpp",
        "a.o",
        "inline int twice(int x)\n{\n    return x * 2;\n}\nint first(int x) { return twice(x) + 1; }\n",
        &["-fPIC", "-O0", "-g"],
    );
    let b = compile_with(
        "c++",
        "cpp",
        "b.o",
        "int pad;\n\ninline int twice(int x)\n{\n    return x * 2;\n}\nint second(int x) { return twice(x) + 2; }\n",
        &["-fPIC", "-O0", "-g"],
    );
    let bytes = pack(&[a, b]);
    let module = parse(&bytes);
    assert!(module.header().flags.contains(ModuleFlags::DEBUG_INFO));
    let map = source_map(&module);
    let twice = symbol(&module, "_Z5twicei");
    let second = symbol(&module, "_Z6secondi");
    let at_twice = map.lookup(twice.value).expect("twice has lines");
    assert!(
        at_twice.file.ends_with("/a.cpp") && (1..=3).contains(&at_twice.line),
        "the kept copy is a.cpp's: {at_twice}"
    );
    // Every line of b.cpp lies in `second`, the only code of b.o that was kept.
    let mut rows = map.rows().peekable();
    let mut from_b = 0;
    while let Some(row) = rows.next() {
        let end = rows.peek().map_or(u64::MAX, |next| next.address);
        if row.is_end() || !map.file(row.file).unwrap().ends_with("/b.cpp") {
            continue;
        }
        from_b += 1;
        assert!(
            row.address >= second.value && end <= second.value + second.size,
            "b.cpp:{} at {:#x}..{end:#x} is outside second ({:#x}..{:#x})",
            row.line,
            row.address,
            second.value,
            second.value + second.size
        );
    }
    assert!(from_b > 0, "second has lines");
}

/// Each function of a `-ffunction-sections` object has a sequence of its own, relocated
/// against its own section; the layout places the sections apart. Each function's first
/// address must map to its own line.
#[test]
fn each_function_section_maps_to_its_own_lines() {
    let source = "int f(int x)\n{\n    return x + 1;\n}\n\nint g(int x)\n{\n    return x * 3;\n}\n\nint h(int x)\n{\n    return x - 5;\n}\n";
    for flags in [&["-g", "-ffunction-sections"][..], &["-g"][..]] {
        let input = compile("fs.o", source, flags);
        let bytes = pack(&[input]);
        let module = parse(&bytes);
        let map = source_map(&module);
        for (name, opening) in [("f", 1), ("g", 6), ("h", 11)] {
            let function = symbol(&module, name);
            let location = map.lookup(function.value).expect("a line");
            assert!(location.file.ends_with("/fs.c"), "{location}");
            assert!(
                (opening..opening + 3).contains(&location.line),
                "{flags:?}: {name} at {location}, declared on line {opening}"
            );
            let last = map
                .lookup(function.value + function.size - 1)
                .expect("a line");
            assert!(
                (opening..opening + 4).contains(&last.line),
                "{flags:?}: the end of {name} at {last}"
            );
        }
    }
}

#[test]
fn objects_without_dwarf_have_no_source_map() {
    let input = compile("plain.o", "int f(int x) { return x + 1; }\n", &[]);
    let bytes = pack(&[input]);
    let module = parse(&bytes);
    assert!(module.source_map().unwrap().is_none());
    assert!(!module.header().flags.contains(ModuleFlags::DEBUG_INFO));
}

#[test]
fn a_broken_line_program_is_an_error_naming_the_object() {
    let mut input = compile("broken.o", "int f(int x) { return x + 1; }\n", &["-g"]);
    // The unit length of the first line program: 0xfffffff0 is reserved in DWARF.
    let header = elf_section_header_offset(&input, ".debug_line");
    let offset = u64::from_le_bytes(input.data[header + 24..header + 32].try_into().unwrap());
    let offset = offset as usize;
    input.data[offset..offset + 4].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
    let error = pack_error(&[input], &Default::default());
    assert!(
        error.contains("broken.o") && error.contains("cannot read its DWARF line information"),
        "{error}"
    );
}
