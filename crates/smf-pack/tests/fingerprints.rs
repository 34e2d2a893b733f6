//! Function fingerprints (docs/FORMAT.md, *Function fingerprints*): what a reload compares
//! instead of two versions' code. A function keeps its fingerprint when only addresses change
//! around it, and gets a new one when its code or what it refers to changes.

mod util;

use smf_pack::Options;
use util::*;

const V1: &str = r#"
int counter;
int helper(int x) { return x * 3; }
int other(int x) { return x - 1; }
int twice(int x) { return helper(x) + counter; }
int edited(int x) { return x * 5; }
int retargeted(int x) { return helper(x); }
const char *greeting(void) { return "hello"; }
"#;

/// V1 with a function inserted first (everything after it moves), one body edited and one
/// call retargeted.
const V2: &str = r#"
int added(int x) { return x * 7 + 2; }
int counter;
int helper(int x) { return x * 3; }
int other(int x) { return x - 1; }
int twice(int x) { return helper(x) + counter; }
int edited(int x) { return x * 6; }
int retargeted(int x) { return other(x); }
const char *greeting(void) { return "hello"; }
"#;

fn reloadable(source: &str) -> Vec<u8> {
    let object = compile("m.o", source, &["-O0"]);
    pack_with(
        &[object],
        &Options {
            reloadable: true,
            ..Options::default()
        },
    )
}

fn fingerprint(bytes: &[u8], name: &str) -> Option<u64> {
    let module = parse(bytes);
    let (index, _) = module.lookup_index(name)?;
    module.fingerprint(index)
}

#[test]
fn a_function_keeps_its_fingerprint_when_only_addresses_change() {
    let (v1, v2) = (reloadable(V1), reloadable(V2));
    // The functions did move: their code addresses differ between the versions.
    let at = |bytes: &[u8], name: &str| symbol(&parse(bytes), name).value;
    assert_ne!(at(&v1, "twice"), at(&v2, "twice"), "nothing moved");
    for name in ["helper", "other", "twice", "greeting"] {
        let (a, b) = (fingerprint(&v1, name), fingerprint(&v2, name));
        assert!(a.is_some(), "{name} has a fingerprint");
        assert_eq!(a, b, "{name} only moved");
    }
    for name in ["edited", "retargeted"] {
        let (a, b) = (fingerprint(&v1, name), fingerprint(&v2, name));
        assert!(a.is_some() && b.is_some(), "{name} has fingerprints");
        assert_ne!(a, b, "{name} changed");
    }
    assert!(fingerprint(&v2, "added").is_some());
    // Every exported function has one, and nothing else does.
    let module = parse(&v2);
    let functions = module
        .symbols()
        .exported()
        .filter(|(_, s)| s.kind == smf_format::SymbolKind::Function)
        .count();
    assert_eq!(module.fingerprints().len(), functions);
    // Packing is deterministic: the same input, the same fingerprints.
    assert_eq!(
        parse(&reloadable(V1)).fingerprints().collect::<Vec<_>>(),
        parse(&v1).fingerprints().collect::<Vec<_>>()
    );
}

#[test]
fn only_reloadable_modules_carry_fingerprints() {
    let module = pack(&[compile("m.o", V1, &[])]);
    let parsed = parse(&module);
    assert_eq!(parsed.fingerprints().len(), 0);
    assert!(
        parsed
            .table_section(smf_format::SectionKind::Fingerprints)
            .is_none()
    );
}
