//! Readable names for mangled C++ (Itanium ABI) and Rust symbols, for messages and reports.

/// The demangled form of `name`, or `None` if it is not a mangled C++ or Rust name (or one
/// the demanglers cannot read). Rust names lose their hash suffix.
pub fn demangle(name: &str) -> Option<String> {
    if let Ok(rust) = rustc_demangle::try_demangle(name) {
        return Some(format!("{rust:#}"));
    }
    if name.starts_with("_Z") {
        let symbol = cpp_demangle::Symbol::new(name).ok()?;
        return symbol.demangle().ok().filter(|d| d != name);
    }
    None
}

/// `name`, followed by its demangled form in parentheses if it has one.
pub fn with_demangled(name: &str) -> String {
    match demangle(name) {
        Some(demangled) => format!("{name} ({demangled})"),
        None => name.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cxx_and_rust_names_demangle_and_c_names_do_not() {
        assert_eq!(
            demangle("_ZNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEE7reserveEm").as_deref(),
            Some(
                "std::__cxx11::basic_string<char, std::char_traits<char>, \
                 std::allocator<char> >::reserve(unsigned long)"
            )
        );
        assert_eq!(
            demangle("_ZN4core9panicking5panic17h0123456789abcdefE").as_deref(),
            Some("core::panicking::panic")
        );
        assert_eq!(
            demangle("_ZdlPvm").as_deref(),
            Some("operator delete(void*, unsigned long)")
        );
        assert_eq!(demangle("missing_fn"), None);
        assert_eq!(demangle("_Z"), None);
        assert_eq!(demangle("__start_my_items"), None);
        assert_eq!(
            with_demangled("_ZdlPvm"),
            "_ZdlPvm (operator delete(void*, unsigned long))"
        );
        assert_eq!(with_demangled("puts"), "puts");
    }
}
