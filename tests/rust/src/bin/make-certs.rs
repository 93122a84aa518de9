//! `make-certs DIR`: fresh test certificates for the TLS tests, generated on each run so that no
//! private key is ever copied from elsewhere or committed.
//!
//! - `ca.pem` / `ca.key`: a test CA;
//! - `server.pem` / `server.key`: signed by it, valid for `*.test.google.fr`, `localhost`,
//!   `127.0.0.1` and `::1` (the names the interop tests use);
//! - `client.pem` / `client.key`: a client certificate signed by it, for mutual TLS;
//! - `other-ca.pem`, `other-client.pem` / `other-client.key`: a second, unrelated CA and a client
//!   certificate it signed, for the "wrong CA" cases.

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

fn ca(name: &str) -> Result<(CertificateParams, KeyPair, String), rcgen::Error> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = params.self_signed(&key)?;
    Ok((params, key, cert.pem()))
}

fn leaf(
    names: &[&str],
    common_name: &str,
    usage: ExtendedKeyUsagePurpose,
    issuer: &Issuer<'_, KeyPair>,
) -> Result<(String, String), rcgen::Error> {
    let key = KeyPair::generate()?;
    let mut params =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())?;
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.extended_key_usages = vec![usage];
    let cert = params.signed_by(&key, issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).ok_or("usage: make-certs DIR")?;
    let dir = Path::new(&dir);
    std::fs::create_dir_all(dir)?;
    let write = |name: &str, text: &str| std::fs::write(dir.join(name), text);

    let (ca_params, ca_key, ca_pem) = ca("rgrpc test CA")?;
    write("ca.pem", &ca_pem)?;
    write("ca.key", &ca_key.serialize_pem())?;
    let issuer = Issuer::new(ca_params, ca_key);
    let (pem, key) = leaf(
        &["*.test.google.fr", "localhost", "127.0.0.1", "::1"],
        "rgrpc test server",
        ExtendedKeyUsagePurpose::ServerAuth,
        &issuer,
    )?;
    write("server.pem", &pem)?;
    write("server.key", &key)?;
    let (pem, key) = leaf(
        &["client.rgrpc.test"],
        "rgrpc test client",
        ExtendedKeyUsagePurpose::ClientAuth,
        &issuer,
    )?;
    write("client.pem", &pem)?;
    write("client.key", &key)?;

    let (other_params, other_key, other_pem) = ca("unrelated test CA")?;
    write("other-ca.pem", &other_pem)?;
    let other = Issuer::new(other_params, other_key);
    let (pem, key) = leaf(
        &["intruder.rgrpc.test"],
        "intruder",
        ExtendedKeyUsagePurpose::ClientAuth,
        &other,
    )?;
    write("other-client.pem", &pem)?;
    write("other-client.key", &key)?;
    Ok(())
}
