//! A TLS acceptor with a fresh self-signed certificate (rcgen), for https backends.

use std::sync::Arc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::crypto::{CryptoProvider, aws_lc_rs};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::{ServerConfig, version};

/// The names the certificate is for.
pub const CERT_NAMES: [&str; 3] = ["localhost", "api.example.test", "127.0.0.1"];

/// Hands out the one certificate, or refuses the handshake when the client
/// does not send the required SNI (a strict virtual host).
#[derive(Debug)]
struct Resolver {
    key: Arc<CertifiedKey>,
    required_sni: Option<String>,
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        match &self.required_sni {
            Some(want) if hello.server_name() != Some(want.as_str()) => None,
            _ => Some(self.key.clone()),
        }
    }
}

/// An acceptor for TLS 1.2 and 1.3 with a new self-signed certificate for
/// [`CERT_NAMES`]; with `required_sni`, a ClientHello without that SNI is
/// refused.
///
/// # Panics
/// rcgen or rustls refuse what they are given (a bug in this helper).
pub fn self_signed_acceptor(required_sni: Option<&str>) -> TlsAcceptor {
    let names: Vec<String> = CERT_NAMES.iter().map(|n| n.to_string()).collect();
    let certified = rcgen::generate_simple_self_signed(names).expect("a self-signed cert");
    let provider = Arc::new(aws_lc_rs::default_provider());
    let cert: CertificateDer<'static> = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let key = CertifiedKey::from_der(vec![cert], key, &provider).expect("the key loads");
    let config = server_config(provider)
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Resolver {
            key: Arc::new(key),
            required_sni: required_sni.map(str::to_string),
        }));
    TlsAcceptor::from(Arc::new(config))
}

fn server_config(
    provider: Arc<CryptoProvider>,
) -> tokio_rustls::rustls::ConfigBuilder<ServerConfig, tokio_rustls::rustls::WantsVerifier> {
    ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&version::TLS13, &version::TLS12])
        .expect("TLS 1.2 and 1.3")
}
