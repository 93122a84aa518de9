#![no_main]

// The .proto front end of rgrpc-build: any text either fails with a located error or becomes
// Rust that parses.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    match rgrpc_build::generate_from_source(source) {
        Ok(code) => {
            if let Err(err) = syn::parse_file(&code) {
                panic!("generated code does not parse: {err}\n{code}");
            }
        }
        Err(err) => {
            let text = err.to_string();
            assert!(!text.is_empty());
        }
    }
});
