//! Glue from a subchannel to the shared transport code: a socket (`transport/connect.rs`), TLS
//! when the channel has it (`transport/tls.rs`), then the HTTP/2 handshake (`http2/handshake.rs`).
//! Each step's error names the address and the step.

use std::sync::Arc;
use std::time::Duration;

use super::subchannel::{Connect, Connected};
use crate::error::Error;
use crate::http2::handshake::{self, ClientSettings};
use crate::transport::connect::{self, Address};

/// TLS for a channel: the connector and the name the server certificate must carry.
#[cfg(feature = "tls")]
pub(crate) type Tls = Option<(
    tokio_rustls::TlsConnector,
    rustls_pki_types::ServerName<'static>,
)>;

/// Opens real connections.
pub(crate) struct TransportConnector {
    pub(crate) settings: ClientSettings,
    pub(crate) connect_timeout: Option<Duration>,
    #[cfg(feature = "tls")]
    pub(crate) tls: Tls,
}

impl Connect for Arc<TransportConnector> {
    fn connect(
        &self,
        address: &Address,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<Connected, Error>> + Send>> {
        let this = self.clone();
        let address = address.clone();
        Box::pin(async move {
            let socket = connect::connect(&address).await?;
            #[cfg(feature = "tls")]
            if let Some((connector, name)) = &this.tls {
                let tls = crate::transport::tls::client_handshake(
                    connector,
                    name.clone(),
                    socket,
                    &address,
                )
                .await?;
                let (send, ended) = handshake::client(tls, &this.settings, &address).await?;
                return Ok(Connected { send, ended });
            }
            let (send, ended) = handshake::client(socket, &this.settings, &address).await?;
            Ok(Connected { send, ended })
        })
    }

    fn timeout(&self, backoff: Duration) -> Duration {
        self.connect_timeout.unwrap_or(backoff)
    }
}
