//! TLS with rustls: certificates and keys from PEM, server and client configurations, ALPN `h2`
//! required on both sides, mutual TLS, and the peer's certificate chain for the call context.
//!
//! This module builds TLS sessions; it does not decide who may call what. Authorization belongs
//! to interceptors and handlers, which see the peer's certificates in the call context.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use crate::error::{Error, Kind};

const ALPN_H2: &[u8] = b"h2";

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls_error(
    message: impl Into<String>,
    source: impl std::error::Error + Send + Sync + 'static,
) -> Error {
    Error::new(Kind::InvalidAddress, message).with_source(source)
}

/// One or more X.509 certificates, read from PEM.
#[derive(Debug, Clone)]
pub struct Certificate {
    certs: Vec<CertificateDer<'static>>,
}

impl Certificate {
    /// Every certificate in a PEM document (a CA file may hold several).
    pub fn from_pem(pem: impl AsRef<[u8]>) -> Result<Certificate, Error> {
        let certs = CertificateDer::pem_slice_iter(pem.as_ref())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| tls_error("cannot read the PEM certificates", e))?;
        if certs.is_empty() {
            return Err(Error::new(
                Kind::InvalidAddress,
                "the PEM text holds no certificate",
            ));
        }
        Ok(Certificate { certs })
    }
}

/// A certificate chain with its private key, to prove who we are.
#[derive(Debug)]
pub struct Identity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl Clone for Identity {
    fn clone(&self) -> Identity {
        Identity {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl Identity {
    /// A chain (leaf first) and its key (PKCS#8, PKCS#1 or SEC1), both PEM.
    pub fn from_pem(chain: impl AsRef<[u8]>, key: impl AsRef<[u8]>) -> Result<Identity, Error> {
        let chain = Certificate::from_pem(chain)?.certs;
        let key = PrivateKeyDer::from_pem_slice(key.as_ref())
            .map_err(|e| tls_error("cannot read the PEM private key", e))?;
        Ok(Identity { chain, key })
    }
}

/// TLS for a server: its identity, and optionally the CA that client certificates must chain to.
#[derive(Debug, Clone)]
pub struct ServerTlsConfig {
    identity: Identity,
    client_ca: Option<Certificate>,
    client_auth_optional: bool,
}

impl ServerTlsConfig {
    /// TLS with this certificate chain and key.
    pub fn new(identity: Identity) -> ServerTlsConfig {
        ServerTlsConfig {
            identity,
            client_ca: None,
            client_auth_optional: false,
        }
    }

    /// Mutual TLS: clients must present a certificate that chains to `ca`.
    pub fn client_ca_root(mut self, ca: Certificate) -> ServerTlsConfig {
        self.client_ca = Some(ca);
        self
    }

    /// With a client CA, also accept clients that present no certificate (their calls see no
    /// peer certificates).
    pub fn client_auth_optional(mut self, optional: bool) -> ServerTlsConfig {
        self.client_auth_optional = optional;
        self
    }

    pub(crate) fn acceptor(&self) -> Result<tokio_rustls::TlsAcceptor, Error> {
        let builder = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_error("TLS versions", e))?;
        let builder = match &self.client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                for cert in &ca.certs {
                    roots
                        .add(cert.clone())
                        .map_err(|e| tls_error("the client CA certificate is not usable", e))?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider());
                let verifier = if self.client_auth_optional {
                    verifier.allow_unauthenticated()
                } else {
                    verifier
                }
                .build()
                .map_err(|e| tls_error("cannot build the client certificate verifier", e))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder
            .with_single_cert(self.identity.chain.clone(), self.identity.key.clone_key())
            .map_err(|e| tls_error("the server certificate and key do not form an identity", e))?;
        config.alpn_protocols = vec![ALPN_H2.to_vec()];
        Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
    }
}

/// TLS for a channel: which CAs to trust, the name to verify, and an identity for mutual TLS.
#[derive(Debug, Clone, Default)]
pub struct ClientTlsConfig {
    ca: Vec<Certificate>,
    native_roots: bool,
    domain: Option<String>,
    identity: Option<Identity>,
    skip_verification: bool,
}

impl ClientTlsConfig {
    /// Trusts the system's root certificates unless CAs are given.
    pub fn new() -> ClientTlsConfig {
        ClientTlsConfig::default()
    }

    /// Trusts `ca` (instead of the system roots, unless `with_native_roots` is also called).
    pub fn ca_certificate(mut self, ca: Certificate) -> ClientTlsConfig {
        self.ca.push(ca);
        self
    }

    /// Trusts the system's root certificates too.
    pub fn with_native_roots(mut self) -> ClientTlsConfig {
        self.native_roots = true;
        self
    }

    /// The name to send in SNI, verify the server certificate against and use as `:authority`,
    /// instead of the target's host (what grpc calls `ssl_target_name_override`).
    pub fn domain_name(mut self, name: impl Into<String>) -> ClientTlsConfig {
        self.domain = Some(name.into());
        self
    }

    /// Accepts any server certificate, without checking who signed it or whom it names. For
    /// talking to a development server by hand (`rgrpc --insecure-skip-verify`); never for
    /// production: anyone on the path can then read and change the traffic. The handshake's
    /// signatures are still checked.
    pub fn danger_accept_invalid_certs(mut self, yes: bool) -> ClientTlsConfig {
        self.skip_verification = yes;
        self
    }

    /// Presents this identity to servers that ask for a client certificate.
    pub fn identity(mut self, identity: Identity) -> ClientTlsConfig {
        self.identity = Some(identity);
        self
    }

    pub(crate) fn domain(&self) -> Option<&str> {
        self.domain.as_deref()
    }

    pub(crate) fn connector(&self) -> Result<tokio_rustls::TlsConnector, Error> {
        let mut roots = RootCertStore::empty();
        for ca in &self.ca {
            for cert in &ca.certs {
                roots
                    .add(cert.clone())
                    .map_err(|e| tls_error("a CA certificate is not usable", e))?;
            }
        }
        if self.ca.is_empty() || self.native_roots {
            let native = rustls_native_certs::load_native_certs();
            for cert in native.certs {
                // Skip system certificates rustls cannot use, as browsers do.
                let _ = roots.add(cert);
            }
        }
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_error("TLS versions", e))?;
        let builder = if self.skip_verification {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider())))
        } else {
            builder.with_root_certificates(roots)
        };
        let mut config = match &self.identity {
            None => builder.with_no_client_auth(),
            Some(id) => builder
                .with_client_auth_cert(id.chain.clone(), id.key.clone_key())
                .map_err(|e| {
                    tls_error("the client certificate and key do not form an identity", e)
                })?,
        };
        config.alpn_protocols = vec![ALPN_H2.to_vec()];
        Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
    }
}

/// The server name to verify, from the override or the host.
pub(crate) fn server_name(name: &str) -> Result<ServerName<'static>, Error> {
    ServerName::try_from(name.to_owned())
        .map_err(|e| tls_error(format!("{name:?} is not a valid TLS server name"), e))
}

/// True when the session agreed on HTTP/2.
pub(crate) fn negotiated_h2(protocol: Option<&[u8]>) -> bool {
    protocol == Some(ALPN_H2)
}

/// The peer's certificate chain as DER, leaf first.
pub(crate) fn peer_chain(certs: Option<&[CertificateDer<'_>]>) -> Option<Arc<[Vec<u8>]>> {
    certs.filter(|c| !c.is_empty()).map(|c| {
        c.iter()
            .map(|d| d.as_ref().to_vec())
            .collect::<Vec<_>>()
            .into()
    })
}

/// The verifier behind `danger_accept_invalid_certs`: any chain and name, but real signatures.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The client side of a TLS handshake on `io`, with ALPN `h2` required. `peer` names the server
/// in errors.
pub(crate) async fn client_handshake<IO>(
    connector: &tokio_rustls::TlsConnector,
    name: ServerName<'static>,
    io: IO,
    peer: &(dyn std::fmt::Display + Sync),
) -> Result<tokio_rustls::client::TlsStream<IO>, Error>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let tls = connector.connect(name, io).await.map_err(|e| {
        Error::new(Kind::Handshake, format!("TLS handshake with {peer} failed")).with_source(e)
    })?;
    if !negotiated_h2(tls.get_ref().1.alpn_protocol()) {
        return Err(Error::new(
            Kind::Handshake,
            format!("{peer} did not agree to HTTP/2 over TLS (ALPN h2)"),
        ));
    }
    Ok(tls)
}

/// The server side of a TLS handshake on `io` within `timeout`, with ALPN `h2` required; the
/// session and the client's certificate chain.
pub(crate) async fn server_handshake<IO>(
    acceptor: &tokio_rustls::TlsAcceptor,
    io: IO,
    timeout: std::time::Duration,
) -> Result<(tokio_rustls::server::TlsStream<IO>, Option<Arc<[Vec<u8>]>>), Error>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let tls = match tokio::time::timeout(timeout, acceptor.accept(io)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(err)) => {
            return Err(Error::new(Kind::Handshake, "TLS handshake failed").with_source(err));
        }
        Err(_) => {
            return Err(Error::new(
                Kind::Timeout,
                format!("TLS handshake took longer than {timeout:?}"),
            ));
        }
    };
    let (_, session) = tls.get_ref();
    if !negotiated_h2(session.alpn_protocol()) {
        return Err(Error::new(
            Kind::Handshake,
            "TLS client did not negotiate h2 with ALPN",
        ));
    }
    let certs = peer_chain(session.peer_certificates());
    Ok((tls, certs))
}
