//! The module graph stays acyclic: `scripts/module-cycles.py` (python3, on every machine)
//! reads the `use crate::…` lines and fails naming the imports of any cycle.

#[test]
fn no_module_imports_a_sibling_that_imports_it_back() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/module-cycles.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("python3 is needed to check the module graph (scripts/module-cycles.py)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "import cycles between modules:\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("0 cycle(s)"), "{text}");
}
