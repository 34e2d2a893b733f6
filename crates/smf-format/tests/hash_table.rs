//! The exported-symbol hash table: its stored shape, lookups through it, and hand-patched
//! tables that a reader must reject or survive.

mod common;

use std::sync::mpsc;
use std::time::Duration;

use common::*;
use smf_format::raw::NONE;
use smf_format::*;

/// A module with `count` functions; every third one is local.
fn many_symbols(count: usize) -> (Vec<u8>, Vec<String>) {
    let names: Vec<String> = (0..count).map(|i| format!("sym_{i}")).collect();
    let mut b = ModuleBuilder::new();
    let text = b.add_section(LoadedSection {
        kind: SectionKind::Code,
        name: ".text",
        vaddr: 0,
        mem_size: count as u64,
        align: 1,
        data: vec![0xc3; count],
    });
    // The builder borrows names for 'a; leak them, this is a test.
    let names: &'static [String] = Box::leak(names.into_boxed_slice());
    for (i, name) in names.iter().enumerate() {
        b.add_symbol(Symbol {
            name,
            kind: SymbolKind::Function,
            binding: if i % 3 == 0 {
                Binding::Local
            } else if i % 3 == 1 {
                Binding::Global
            } else {
                Binding::Weak
            },
            visibility: Visibility::Default,
            section: Some(text),
            value: i as u64,
            size: 1,
            type_id: 0,
            version: 0,
        });
    }
    (b.write().unwrap(), names.to_vec())
}

/// The hash section as (buckets, chains), decoded from the bytes as docs/FORMAT.md describes.
fn hash_words(bytes: &[u8]) -> (Vec<u32>, Vec<u32>) {
    let data = &bytes[payload_range(bytes, SectionKind::Hash)];
    let word = |i: usize| u32::from_le_bytes(data[4 * i..4 * i + 4].try_into().unwrap());
    let (bucket_count, chain_count) = (word(0) as usize, word(1) as usize);
    assert_eq!(data.len(), 8 + 4 * (bucket_count + chain_count));
    (
        (0..bucket_count).map(|i| word(2 + i)).collect(),
        (0..chain_count)
            .map(|i| word(2 + bucket_count + i))
            .collect(),
    )
}

/// The lookup algorithm of docs/FORMAT.md, written from the specification alone.
fn spec_lookup(module: &Module, buckets: &[u32], chains: &[u32], name: &str) -> Option<usize> {
    let mut index = buckets[fnv1a32(name.as_bytes()) as usize % buckets.len()];
    for _ in 0..chains.len() {
        if index == NONE {
            return None;
        }
        let symbol = &module.symbols().to_vec().unwrap()[index as usize];
        if symbol.name == name && symbol.binding != Binding::Local {
            return Some(index as usize);
        }
        index = chains[index as usize];
    }
    None
}

#[test]
fn the_stored_table_has_the_specified_shape() {
    let (bytes, names) = many_symbols(1000);
    let module = Module::parse(&bytes).unwrap();
    let (buckets, chains) = hash_words(&bytes);
    let exported = module
        .symbols()
        .to_vec()
        .unwrap()
        .iter()
        .filter(|s| s.is_exported())
        .count();
    assert_eq!(buckets.len(), exported, "one bucket per exported symbol");
    assert_eq!(chains.len(), names.len(), "one chain word per symbol");
    let mut seen = vec![false; names.len()];
    for (b, &head) in buckets.iter().enumerate() {
        let mut index = head;
        let mut previous = None;
        while index != NONE {
            let symbol = &module.symbols().to_vec().unwrap()[index as usize];
            assert!(symbol.is_exported(), "only exported symbols are chained");
            assert_eq!(
                fnv1a32(symbol.name.as_bytes()) as usize % buckets.len(),
                b,
                "{} in the wrong bucket",
                symbol.name
            );
            assert!(previous < Some(index), "chains list symbols in table order");
            assert!(!std::mem::replace(&mut seen[index as usize], true));
            previous = Some(index);
            index = chains[index as usize];
        }
    }
    for (i, symbol) in module.symbols().to_vec().unwrap().iter().enumerate() {
        assert_eq!(seen[i], symbol.is_exported(), "{}", symbol.name);
        if !symbol.is_exported() {
            assert_eq!(chains[i], NONE, "a local symbol's chain word is unused");
        }
    }
}

#[test]
fn lookups_find_every_export_and_nothing_else() {
    let (bytes, names) = many_symbols(1000);
    let module = Module::parse(&bytes).unwrap();
    let (buckets, chains) = hash_words(&bytes);
    for (i, name) in names.iter().enumerate() {
        let found = module.lookup(name);
        if i % 3 == 0 {
            assert_eq!(found, None, "local {name} is not exported");
        } else {
            let symbol = found.unwrap_or_else(|| panic!("{name} not found"));
            assert_eq!((symbol.name, symbol.value), (name.as_str(), i as u64));
        }
        assert_eq!(
            spec_lookup(&module, &buckets, &chains, name),
            found.map(|_| i),
            "the documented algorithm agrees for {name}"
        );
    }
    for miss in [
        "", "sym_", "sym_1000", "sym_-1", "SYM_1", "sym_1\0", "answer", "sym_01",
    ] {
        assert_eq!(module.lookup(miss), None, "{miss:?}");
        assert_eq!(spec_lookup(&module, &buckets, &chains, miss), None);
    }
}

#[test]
fn a_local_does_not_shadow_an_export_of_the_same_name() {
    let mut b = ModuleBuilder::new();
    let text = b.add_section(LoadedSection {
        kind: SectionKind::Code,
        name: ".text",
        vaddr: 0,
        mem_size: 2,
        align: 1,
        data: vec![0xc3; 2],
    });
    for (value, binding) in [(0, Binding::Local), (1, Binding::Global)] {
        b.add_symbol(Symbol {
            name: "twin",
            kind: SymbolKind::Function,
            binding,
            visibility: Visibility::Default,
            section: Some(text),
            value,
            size: 1,
            type_id: 0,
            version: 0,
        });
    }
    let bytes = b.write().unwrap();
    let module = Module::parse(&bytes).unwrap();
    assert_eq!(module.lookup("twin").map(|s| s.value), Some(1));
}

#[test]
fn a_module_with_only_locals_has_an_empty_table() {
    let mut b = ModuleBuilder::new();
    let text = b.add_section(LoadedSection {
        kind: SectionKind::Code,
        name: ".text",
        vaddr: 0,
        mem_size: 1,
        align: 1,
        data: vec![0xc3],
    });
    b.add_symbol(Symbol {
        name: "hidden",
        kind: SymbolKind::Function,
        binding: Binding::Local,
        visibility: Visibility::Hidden,
        section: Some(text),
        value: 0,
        size: 1,
        type_id: 0,
        version: 0,
    });
    let bytes = b.write().unwrap();
    assert_eq!(
        hash_words(&bytes),
        (vec![NONE], vec![NONE]),
        "one empty bucket, one unused chain word"
    );
    assert_eq!(Module::parse(&bytes).unwrap().lookup("hidden"), None);
}

/// Two exported functions whose names fall in the same bucket of a two-bucket table, and a
/// name that is not defined but hashes to that bucket too.
fn colliding_module() -> (Vec<u8>, [String; 2], String) {
    let names: Vec<String> = (0..).map(|i| format!("f{i}")).take(64).collect();
    let bucket = |n: &String| fnv1a32(n.as_bytes()) % 2;
    let first = names[0].clone();
    let mut same = names[1..].iter().filter(|n| bucket(n) == bucket(&first));
    let second = same.next().unwrap().clone();
    let miss = same.next().unwrap().clone();
    let pair: &'static [String; 2] = Box::leak(Box::new([first, second]));
    let mut b = ModuleBuilder::new();
    let text = b.add_section(LoadedSection {
        kind: SectionKind::Code,
        name: ".text",
        vaddr: 0,
        mem_size: 2,
        align: 1,
        data: vec![0xc3; 2],
    });
    for (i, name) in pair.iter().enumerate() {
        b.add_symbol(Symbol {
            name,
            kind: SymbolKind::Function,
            binding: Binding::Global,
            visibility: Visibility::Default,
            section: Some(text),
            value: i as u64,
            size: 1,
            type_id: 0,
            version: 0,
        });
    }
    let bytes = b.write().unwrap();
    let (buckets, chains) = hash_words(&bytes);
    let b0 = bucket(&pair[0]) as usize;
    assert_eq!(
        (buckets[b0], chains.clone()),
        (0, vec![1, NONE]),
        "bucket -> 0 -> 1 -> none"
    );
    (bytes, pair.clone(), miss)
}

/// File offset of chain word `index` in the hash section of `bytes`.
fn chain_word_offset(bytes: &[u8], index: usize) -> usize {
    let range = payload_range(bytes, SectionKind::Hash);
    let bucket_count =
        u32::from_le_bytes(bytes[range.start..range.start + 4].try_into().unwrap()) as usize;
    range.start + 8 + 4 * (bucket_count + index)
}

/// Runs `f` on another thread and fails the test if it does not return within a few seconds,
/// so that a lookup caught in a cycle fails instead of hanging the test run.
fn within_seconds<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(f()).unwrap());
    rx.recv_timeout(Duration::from_secs(10))
        .expect("did not terminate: a hash chain cycle is followed forever")
}

#[test]
fn a_self_loop_that_hides_a_symbol_is_rejected() {
    let (bytes, names, _) = colliding_module();
    let bad = patched(&bytes, |b| {
        let at = chain_word_offset(b, 0);
        b[at..at + 4].copy_from_slice(&0u32.to_le_bytes()); // 0 -> 0 -> 0 ...
    });
    let error = within_seconds(move || Module::parse(&bad).map(|_| ()).unwrap_err());
    let message = error.to_string();
    assert!(
        message.contains(&format!("reaches symbol 0 ({}) a second time", names[0])),
        "{message}"
    );
}

#[test]
fn a_cycle_through_every_symbol_is_rejected() {
    let (bytes, names, _) = colliding_module();
    // 0 -> 1 -> 0 -> ...: both symbols are still reachable, but a lookup of any other name
    // in that bucket would go round forever, so the reader refuses the table.
    let cyclic = patched(&bytes, |b| {
        let at = chain_word_offset(b, 1);
        b[at..at + 4].copy_from_slice(&0u32.to_le_bytes());
    });
    let message =
        within_seconds(move || Module::parse(&cyclic).map(|_| ()).unwrap_err().to_string());
    assert!(
        message.contains(&format!("reaches symbol 0 ({}) a second time", names[0])),
        "{message}"
    );
}

#[test]
fn hand_patched_tables_are_rejected() {
    let (bytes, names, _) = colliding_module();
    let range = payload_range(&bytes, SectionKind::Hash);
    let put = |b: &mut Vec<u8>, at: usize, v: u32| b[at..at + 4].copy_from_slice(&v.to_le_bytes());

    // A chain word naming a symbol that does not exist.
    let bad = patched(&bytes, |b| put(b, chain_word_offset(b, 0), 2));
    expect_err(&bad, &["hash", "holds symbol index 2", "only 2 symbols"]);

    // chain_count must equal the symbol count.
    let bad = patched(&bytes, |b| put(b, range.start + 4, 3));
    expect_err(&bad, &["chain count 3 differs from the symbol count 2"]);

    // No buckets at all.
    let bad = patched(&bytes, |b| put(b, range.start, 0));
    expect_err(&bad, &["bucket count is zero"]);

    // A bucket count that does not match the payload size.
    let bad = patched(&bytes, |b| put(b, range.start, 3));
    expect_err(&bad, &["header says 3 buckets + 2 chains"]);

    // Emptying the bucket hides both exports.
    let bad = patched(&bytes, |b| {
        for i in 0..2 {
            put(b, range.start + 8 + 4 * i, NONE);
        }
    });
    expect_err(
        &bad,
        &[
            &format!("exported symbol 0 ({})", names[0]),
            "cannot be found",
        ],
    );
}

#[test]
fn a_duplicate_export_is_rejected() {
    // Give both exports the first name: the second can only ever be found as the first.
    let (bytes, names, _) = colliding_module();
    let bad = patched(&bytes, |b| {
        let first = entry_mut::<smf_format::raw::Symbol>(b, SectionKind::SymTab, 0).name_offset;
        let second = entry_mut::<smf_format::raw::Symbol>(b, SectionKind::SymTab, 1);
        second.name_offset = first;
        second.name_hash = fnv1a32(names[0].as_bytes()).into();
    });
    expect_err(
        &bad,
        &[
            &format!("symbol 1 ({})", names[0]),
            "exported twice under the same name",
        ],
    );
}

#[test]
fn exports_without_a_hash_table_are_rejected() {
    // The hash section turned into an opaque table: the export can no longer be looked up.
    let mut b = ModuleBuilder::new();
    let text = b.add_section(LoadedSection {
        kind: SectionKind::Code,
        name: ".text",
        vaddr: 0,
        mem_size: 1,
        align: 1,
        data: vec![0xc3],
    });
    b.add_symbol(Symbol {
        name: "exported",
        kind: SymbolKind::Function,
        binding: Binding::Global,
        visibility: Visibility::Default,
        section: Some(text),
        value: 0,
        size: 1,
        type_id: 0,
        version: 0,
    });
    let bytes = b.write().unwrap();
    let hash = section_index(&bytes, SectionKind::Hash);
    let bad = patched(&bytes, |b| {
        section_mut(b, hash).kind = SectionKind::SrcMap.as_raw().into()
    });
    expect_err(&bad, &["1 exported symbols but no hash section"]);
}

#[test]
fn exports_whose_names_share_a_hash_are_told_apart_by_name() {
    // Two pairs of names with equal FNV-1a hashes (0x5acdca4b, then 0x6d45eb4e).
    let names = ["e522789", "e739192", "g115728", "g2169004"];
    assert_eq!(fnv1a32(names[0].as_bytes()), fnv1a32(names[1].as_bytes()));
    assert_eq!(fnv1a32(names[2].as_bytes()), fnv1a32(names[3].as_bytes()));
    let bytes = type_symbols(names.len(), |i| names[i].to_owned(), Binding::Global);
    let module = Module::parse(&bytes).unwrap();
    for name in names {
        assert_eq!(module.lookup(name).map(|s| s.name), Some(name));
    }

    // The last name made a copy of the third: the first pair has no duplicate, the second
    // does, and the later symbol of it is named.
    let bad = patched(&bytes, |b| {
        let third = *entry_mut::<smf_format::raw::Symbol>(b, SectionKind::SymTab, 2);
        let last = entry_mut::<smf_format::raw::Symbol>(b, SectionKind::SymTab, 3);
        last.name_offset = third.name_offset;
        last.name_hash = third.name_hash;
    });
    expect_err(
        &bad,
        &["symbol 3 (g115728)", "exported twice under the same name"],
    );
}

#[test]
fn a_lookup_compares_whole_names_not_prefixes() {
    // "lookup_target" has the FNV-1a hash of a longer name that starts with it and of itself
    // followed by a NUL and "gpmec0": a lookup that compared the stored hash and then only
    // the bytes of the name asked for, or only up to the first NUL, would take one for the
    // other.
    let (short, long, with_nul) = (
        "lookup_target",
        "lookup_target_p6r8cp",
        "lookup_target\0gpmec0",
    );
    assert_eq!(fnv1a32(short.as_bytes()), fnv1a32(long.as_bytes()));
    assert_eq!(fnv1a32(short.as_bytes()), fnv1a32(with_nul.as_bytes()));
    // The longer name first: chains list symbols in table order, so a lookup of the short
    // name meets it first. "gpmec0" right after the short name in the string table makes
    // the bytes `with_nul` names, with a terminator, appear in the file.
    let names = [long, short, "gpmec0"];
    let bytes = type_symbols(names.len(), |i| names[i].to_owned(), Binding::Global);
    let strings = &bytes[payload_range(&bytes, SectionKind::StrTab)];
    assert!(
        strings
            .windows(with_nul.len() + 1)
            .any(|w| w == format!("{with_nul}\0").as_bytes()),
        "the string table holds the bytes of {with_nul:?} and a terminator"
    );
    let module = Module::parse(&bytes).unwrap();
    for (i, name) in names.iter().enumerate() {
        let (index, symbol) = module.lookup_index(name).unwrap();
        assert_eq!((index, symbol.name), (i, *name));
        assert_eq!(
            module.exported_named(i, name, fnv1a32(name.as_bytes())),
            Some(symbol)
        );
    }
    for miss in [
        with_nul,
        "lookup_targe",
        "lookup_target_",
        "lookup_target_p6r8c",
    ] {
        assert_eq!(module.lookup(miss), None, "{miss:?}");
        for i in 0..names.len() {
            assert_eq!(
                module.exported_named(i, miss, fnv1a32(miss.as_bytes())),
                None
            );
        }
    }
    // The name must also carry the symbol's own stored hash.
    assert_eq!(
        module.exported_named(1, short, fnv1a32(short.as_bytes()) ^ 1),
        None
    );
}

#[test]
fn a_lookup_decodes_the_entry_it_finds_as_the_symbol_table_does() {
    let (bytes, names) = many_symbols(300);
    let module = Module::parse(&bytes).unwrap();
    for (i, name) in names.iter().enumerate() {
        let decoded = module.symbol(i).unwrap().unwrap();
        let found = module.exported_named(i, name, fnv1a32(name.as_bytes()));
        if decoded.is_exported() {
            assert_eq!(found, Some(decoded), "{name}");
            assert_eq!(module.lookup(name), Some(decoded), "{name}");
        } else {
            assert_eq!(found, None, "local {name} is not found by name");
        }
    }
}

#[test]
fn a_wrong_stored_hash_is_refused_wherever_the_export_lies() {
    // The parse hashes exported names several at a time: a wrong hash must be found in a
    // full group and in the last, partial one.
    let (bytes, names) = many_symbols(40);
    Module::parse(&bytes).unwrap();
    for i in (0..names.len()).filter(|i| i % 3 != 0) {
        let bad = patched(&bytes, |b| {
            let s = entry_mut::<smf_format::raw::Symbol>(b, SectionKind::SymTab, i);
            s.name_hash = (s.name_hash.get() ^ 0x100).into();
        });
        let error = Module::parse(&bad).unwrap_err().to_string();
        assert!(
            error.contains(&format!("symbol {i} ({})", names[i]))
                && error.contains("is not the FNV-1a hash of the name"),
            "{i}: {error}"
        );
    }
}
