//! Thread-local storage: the template section, the `tls_index` pairs and the offsets the
//! packer computes for the general- and local-dynamic models.
//!
//! Built for Linux and for Windows, run under Wine (README, "Windows"): the system C
//! compiler (`cc`, a Linux program) is started through `smf_test_support::HostCommand`.

mod util;

use smf_format::{Binding, RelocKind, SectionKind};
use util::*;

const SOURCE: &str = "
    __thread long first = 0x1111;
    static __thread char zeros[100];
    __thread int second = 0x2222;
    static const char text[] = \"x\";
    __thread const char *pointer = text;
    long *first_address(void) { return &first; }
    int *second_address(void) { return &second; }
    char *zeros_address(void) { return zeros; }
";

#[test]
fn tdata_then_tbss_form_one_read_only_template() {
    let module_bytes = pack(&[compile("tls.o", SOURCE, &[])]);
    let module = parse(&module_bytes);
    let tls: Vec<_> = module
        .loaded_sections()
        .filter(|s| s.kind == SectionKind::Tls)
        .collect();
    assert_eq!(tls.len(), 1, "one tls section");
    let tls = tls[0];
    // The initialised variables are the file bytes; the zero-filled array comes after them.
    let first = symbol(&module, "first");
    let second = symbol(&module, "second");
    let zeros = symbol(&module, "zeros");
    for s in [first, second] {
        assert!(s.value + s.size <= tls.vaddr + tls.data.len() as u64);
    }
    assert!(zeros.value >= tls.vaddr + tls.data.len() as u64);
    assert!(zeros.value + 100 <= tls.vaddr + tls.mem_size);
    assert_eq!(read_i64(&module, first.value), 0x1111);
    // Thread-locals are listed but never exported: their address is only the template's.
    assert!(
        [first, second, zeros]
            .iter()
            .all(|s| s.binding == Binding::Local)
    );
    // The pointer in the template is relocated at load time like any other.
    let pointer = symbol(&module, "pointer");
    assert!(
        load_relocations(&module)
            .into_iter()
            .any(|r| r.offset == pointer.value && r.kind == RelocKind::Relative64)
    );
}

#[test]
fn general_dynamic_pairs_hold_the_handle_and_the_offset() {
    let module_bytes = pack(&[compile("tls.o", SOURCE, &["-O0"])]);
    let module = parse(&module_bytes);
    let tls = module
        .loaded_sections()
        .find(|s| s.kind == SectionKind::Tls)
        .unwrap();
    let handles: Vec<u64> = load_relocations(&module)
        .into_iter()
        .filter(|r| r.kind == RelocKind::TlsModule)
        .map(|r| r.offset)
        .collect();
    assert!(!handles.is_empty());
    // Each pair's second word is the offset of one variable in the block.
    let mut offsets: Vec<u64> = handles.iter().map(|&h| read_u64(&module, h + 8)).collect();
    offsets.sort();
    let mut expected: Vec<u64> = ["first", "second", "pointer"]
        .iter()
        .map(|n| symbol(&module, n).value - tls.vaddr)
        .collect();
    // `zeros` is static: -O0 still reaches it through its own pair or the local-dynamic one.
    expected.push(symbol(&module, "zeros").value - tls.vaddr);
    expected.sort();
    for offset in &offsets {
        assert!(
            expected.contains(offset) || *offset == 0,
            "pair offset {offset:#x} is no variable's ({expected:x?})"
        );
    }
    // Calls go to the loader's __tls_get_addr, an import like any other.
    assert!(module.imports().iter().any(|i| i.name == "__tls_get_addr"));
}

#[test]
fn local_dynamic_uses_one_pair_with_offset_zero() {
    let source = "
        static __thread int a = 1;
        static __thread int b = 2;
        int mix(int x) { a += x; b -= x; return a * b; }
    ";
    let module_bytes = pack(&[compile("ld.o", source, &["-O2"])]);
    let module = parse(&module_bytes);
    let handles: Vec<u64> = load_relocations(&module)
        .into_iter()
        .filter(|r| r.kind == RelocKind::TlsModule)
        .map(|r| r.offset)
        .collect();
    assert_eq!(handles.len(), 1, "one local-dynamic pair for the module");
    assert_eq!(read_u64(&module, handles[0] + 8), 0);
}
