//! A bad `.proto` fails with `file:line:column: reason`, on one line, never a panic.

use std::path::PathBuf;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rgrpc-build-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("out")).unwrap();
    dir
}

fn compile(name: &str, source: &str) -> Result<String, String> {
    let dir = scratch(name);
    std::fs::write(dir.join("bad.proto"), source).unwrap();
    let result = rgrpc_build::configure()
        .out_dir(dir.join("out"))
        .emit_rerun_if_changed(false)
        .compile(&[dir.join("bad.proto")], &[&dir]);
    let out = match result {
        Ok(()) => Ok(std::fs::read_dir(dir.join("out"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(",")),
        Err(err) => Err(err.to_string()),
    };
    let _ = std::fs::remove_dir_all(&dir);
    out
}

fn assert_located(err: &str, line: usize, column: usize, reason: &str) {
    assert!(!err.contains('\n'), "one line: {err}");
    let prefix = format!("bad.proto:{line}:{column}: ");
    assert!(err.starts_with(&prefix), "expected {prefix}… got {err}");
    assert!(err.contains(reason), "expected {reason:?} in {err}");
}

#[test]
fn syntax_error() {
    let err = compile(
        "syntax",
        "syntax = \"proto3\";\nmessage A {\n  string name = 1\n}\n",
    )
    .unwrap_err();
    assert_located(&err, 4, 1, "expected ';'");
}

#[test]
fn unknown_type() {
    let err = compile(
        "unknown",
        "syntax = \"proto3\";\nmessage A {\n  Missing m = 1;\n}\n",
    )
    .unwrap_err();
    assert_located(&err, 3, 3, "Missing");
}

#[test]
fn required_in_proto3() {
    let err = compile(
        "required",
        "syntax = \"proto3\";\nmessage A {\n  required string a = 1;\n}\n",
    )
    .unwrap_err();
    assert_located(&err, 3, 3, "required");
}

#[test]
fn duplicate_field_number() {
    let err = compile(
        "duplicate",
        "syntax = \"proto3\";\nmessage A {\n  string a = 1;\n  string b = 1;\n}\n",
    )
    .unwrap_err();
    assert_located(&err, 4, 14, "1");
}

#[test]
fn missing_import_names_the_file() {
    let err = compile(
        "import",
        "syntax = \"proto3\";\nimport \"nowhere/x.proto\";\nmessage A {}\n",
    )
    .unwrap_err();
    assert!(err.contains("nowhere/x.proto"), "{err}");
    assert!(err.starts_with("bad.proto:2:"), "{err}");
}

#[test]
fn good_file_generates_code_with_options_ignored() {
    let files = compile(
        "good",
        "syntax = \"proto3\";\npackage p.q;\noption java_package = \"x.y\";\noption cc_generic_services = true;\nmessage A { map<string, int32> m = 1; oneof o { string s = 2; int64 n = 3; } }\nservice S { rpc Do(A) returns (stream A); }\n",
    )
    .unwrap();
    assert_eq!(files, "p.q.rs");
}
