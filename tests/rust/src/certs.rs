//! Test certificates, generated fresh for each run so that no private key is ever copied from
//! elsewhere or committed. See `make-certs` for the files they are written as.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// PEM texts of a test PKI.
#[derive(Debug, Clone)]
pub struct TestPki {
    pub ca: String,
    pub ca_key: String,
    pub server: String,
    pub server_key: String,
    pub client: String,
    pub client_key: String,
    pub other_ca: String,
    pub other_client: String,
    pub other_client_key: String,
}

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

/// A CA; a server certificate for `*.test.google.fr`, `localhost`, `127.0.0.1` and `::1`; a
/// client certificate; and an unrelated CA with a client certificate of its own.
pub fn generate() -> Result<TestPki, rcgen::Error> {
    let (ca_params, ca_key, ca_pem) = ca("rgrpc test CA")?;
    let ca_key_pem = ca_key.serialize_pem();
    let issuer = Issuer::new(ca_params, ca_key);
    let (server, server_key) = leaf(
        &["*.test.google.fr", "localhost", "127.0.0.1", "::1"],
        "rgrpc test server",
        ExtendedKeyUsagePurpose::ServerAuth,
        &issuer,
    )?;
    let (client, client_key) = leaf(
        &["client.rgrpc.test"],
        "rgrpc test client",
        ExtendedKeyUsagePurpose::ClientAuth,
        &issuer,
    )?;
    let (other_params, other_key, other_ca) = ca("unrelated test CA")?;
    let other = Issuer::new(other_params, other_key);
    let (other_client, other_client_key) = leaf(
        &["intruder.rgrpc.test"],
        "intruder",
        ExtendedKeyUsagePurpose::ClientAuth,
        &other,
    )?;
    Ok(TestPki {
        ca: ca_pem,
        ca_key: ca_key_pem,
        server,
        server_key,
        client,
        client_key,
        other_ca,
        other_client,
        other_client_key,
    })
}
