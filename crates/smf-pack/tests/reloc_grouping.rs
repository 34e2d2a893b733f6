//! The packer puts the data that load-time relocations write first, so that they land on as
//! few pages as possible: every page the loader writes is a private copy of a file page.
//!
//! Built for Linux and for Windows, run under Wine (README, "Windows"): the system C
//! compiler (`cc`, a Linux program) is started through `smf_test_support::HostCommand`.

mod util;

use smf_format::{RelocKind, SectionKind};
use util::*;

#[test]
fn data_holding_pointers_comes_before_plain_data() {
    // Sixteen kilobytes of plain data on either side of a small table of pointers.
    let before = compile("before.o", "int table_before[4096] = {1};", &[]);
    let pointers = compile(
        "pointers.o",
        "int target;\nint *pointers[4] = {&target, &target + 1, &target + 2, &target + 3};",
        &[],
    );
    let after = compile("after.o", "int table_after[4096] = {2};", &[]);
    let bytes = pack(&[before, pointers, after]);
    let module = parse(&bytes);

    let data = module
        .loaded_sections()
        .find(|s| s.kind == SectionKind::Data)
        .expect("a data section");
    let relocations: Vec<_> = load_relocations(&module)
        .into_iter()
        .filter(|r| data.image_range().contains(&r.offset))
        .collect();
    assert_eq!(relocations.len(), 4, "{:?}", load_relocations(&module));
    for r in &relocations {
        assert_eq!(r.kind, RelocKind::Relative64);
        assert!(
            r.offset < data.vaddr + 4096,
            "relocation at {:#x} is not on the first page of data at {:#x}",
            r.offset,
            data.vaddr
        );
    }
    // Everything else is where its symbol says, with its contents.
    let pointers = symbol(&module, "pointers").value;
    assert_eq!(pointers, data.vaddr, "the pointer table comes first");
    let target = symbol(&module, "target").value;
    let mut addends: Vec<i64> = relocations.iter().map(|r| r.addend).collect();
    addends.sort_unstable();
    assert_eq!(addends, [0, 4, 8, 12].map(|d| target as i64 + d));
    assert_eq!(read_i32(&module, symbol(&module, "table_before").value), 1);
    assert_eq!(read_i32(&module, symbol(&module, "table_after").value), 2);
}
