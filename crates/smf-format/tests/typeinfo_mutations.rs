//! Every single-byte change and every truncation of the `typeinfo` tables in
//! `fuzz/seeds/typeinfo` (the worked example, and the tables gcc's and clang's DWARF gave the
//! packer): each is refused with an error or parses into types that print, compare equal to
//! themselves and to their copies. What the fuzz target checks, on every neighbour of the seeds.

use smf_format::typeinfo::{Match, OwnedType, TypeInfo, compare};

fn check(bytes: &[u8], what: &str) {
    let Ok(info) = TypeInfo::parse(bytes) else {
        return;
    };
    for id in 0..=info.len() + 1 {
        let text = info.display(id);
        let _ = info.describe_record(id);
        assert_eq!(
            compare(&info, id, &info, id, Match::Exact),
            Ok(()),
            "{what}"
        );
        let copy = OwnedType::copy_of(&info, id);
        let (table, copied) = copy.view();
        if !text.contains('#') {
            assert_eq!(table.display(copied), text, "{what}");
        }
        assert_eq!(
            compare(&info, id, &table, copied, Match::Exact),
            Ok(()),
            "{what}: type {id} {text}"
        );
    }
}

#[test]
fn neighbours_of_the_seeds_are_refused_or_consistent() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/typeinfo");
    let mut seeds = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        assert!(TypeInfo::parse(&bytes).is_ok(), "{} parses", path.display());
        seeds += 1;
        for len in 0..bytes.len() {
            check(&bytes[..len], &format!("{} cut at {len}", path.display()));
        }
        for i in 0..bytes.len() {
            for v in [0u8, 1, 2, 7, 0x80, 0xff] {
                let mut b = bytes.clone();
                b[i] ^= v;
                check(&b, &format!("{} byte {i} ^ {v:#x}", path.display()));
            }
        }
    }
    assert!(seeds >= 3, "fuzz/seeds/typeinfo is missing");
}
