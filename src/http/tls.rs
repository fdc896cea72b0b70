//! HTTPS for the public listener (rustls), with optional or required client certificates
//! (mTLS). The verified client certificate is attached to the connection so that the token
//! endpoint can bind tokens to it and the data path can check the binding (RFC 8705).

use std::any::Any;
use std::sync::Arc;

use actix_web::dev::Extensions;
use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::{ClientAuth, TlsSettings};

/// The DER of the client's leaf certificate on an mTLS connection.
#[derive(Debug, Clone)]
pub struct ClientCert(pub Vec<u8>);

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("server.tls.cert {path}: {why}")]
    Cert { path: String, why: String },
    #[error("server.tls.key {path}: {why}")]
    Key { path: String, why: String },
    #[error("server.tls.client_ca {path}: {why}")]
    ClientCa { path: String, why: String },
    #[error("server.tls: {0}")]
    Config(String),
}

pub fn server_config(tls: &TlsSettings) -> Result<ServerConfig, TlsError> {
    let cert_path = tls.cert.display().to_string();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&tls.cert)
        .and_then(|it| it.collect())
        .map_err(|e| TlsError::Cert {
            path: cert_path.clone(),
            why: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Cert {
            path: cert_path,
            why: "no certificate in the file".into(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(&tls.key).map_err(|e| TlsError::Key {
        path: tls.key.display().to_string(),
        why: e.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = match (tls.client_auth, &tls.client_ca) {
        (ClientAuth::None, _) | (_, None) => builder.with_no_client_auth(),
        (mode, Some(ca)) => {
            let ca_path = ca.display().to_string();
            let mut roots = rustls::RootCertStore::empty();
            let cas = CertificateDer::pem_file_iter(ca)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| TlsError::ClientCa {
                    path: ca_path.clone(),
                    why: e.to_string(),
                })?;
            for c in cas {
                roots.add(c).map_err(|e| TlsError::ClientCa {
                    path: ca_path.clone(),
                    why: e.to_string(),
                })?;
            }
            let mut verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            if mode == ClientAuth::Optional {
                verifier = verifier.allow_unauthenticated();
            }
            let verifier = verifier.build().map_err(|e| TlsError::ClientCa {
                path: ca_path,
                why: e.to_string(),
            })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// actix `on_connect` hook: remembers the verified client certificate of a TLS connection.
pub fn remember_client_cert(conn: &dyn Any, ext: &mut Extensions) {
    type Tls = actix_tls::accept::rustls_0_23::TlsStream<actix_web::rt::net::TcpStream>;
    if let Some(tls) = conn.downcast_ref::<Tls>() {
        let (_, session) = tls.get_ref();
        if let Some(leaf) = session.peer_certificates().and_then(|c| c.first()) {
            ext.insert(ClientCert(leaf.as_ref().to_vec()));
        }
    }
}
