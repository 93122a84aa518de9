//! `make-certs DIR`: fresh test certificates for the TLS tests (see `rgrpc_tests::certs`):
//! `ca.pem`/`ca.key`, `server.pem`/`server.key` (for `*.test.google.fr`, `localhost`,
//! `127.0.0.1`, `::1`), `client.pem`/`client.key`, and `other-ca.pem`,
//! `other-client.pem`/`other-client.key` from an unrelated CA.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).ok_or("usage: make-certs DIR")?;
    let dir = std::path::Path::new(&dir);
    std::fs::create_dir_all(dir)?;
    let pki = rgrpc_tests::certs::generate()?;
    for (name, text) in [
        ("ca.pem", &pki.ca),
        ("ca.key", &pki.ca_key),
        ("server.pem", &pki.server),
        ("server.key", &pki.server_key),
        ("client.pem", &pki.client),
        ("client.key", &pki.client_key),
        ("other-ca.pem", &pki.other_ca),
        ("other-client.pem", &pki.other_client),
        ("other-client.key", &pki.other_client_key),
    ] {
        std::fs::write(dir.join(name), text)?;
    }
    Ok(())
}
