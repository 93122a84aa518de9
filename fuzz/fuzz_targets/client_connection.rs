#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rgrpc::fuzz::client_connection(data));
