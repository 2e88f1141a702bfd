//! The worker session's connection, with TLS the way libpq reads `sslmode` from DATABASE_URL
//! (the pool, through libpq, already does): `disable`/`allow` plain; `prefer` (the default)
//! TLS when the server offers it; `require` TLS, certificate checked only when `sslrootcert`
//! names a root; `verify-ca`/`verify-full` TLS with the certificate and host name checked
//! against `sslrootcert` or the public web roots.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_postgres::config::SslMode;
use tokio_postgres::{AsyncMessage, Client, NoTls};

/// Parameters libpq knows that tokio-postgres does not parse; we read the ones that matter.
const LIBPQ_ONLY: &[&str] = &[
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "sslcrl",
    "sslpassword",
    "sslcompression",
    "sslsni",
    "gssencmode",
];

/// The connection settings and, when TLS may be used, its configuration.
pub(super) fn parse(
    url: &str,
) -> anyhow::Result<(tokio_postgres::Config, Option<rustls::ClientConfig>)> {
    let mut u = url::Url::parse(url).map_err(|e| anyhow::anyhow!("DATABASE_URL: {e}"))?;
    let mut mode = String::from("prefer");
    let mut root = None;
    let kept: Vec<(String, String)> = u
        .query_pairs()
        .filter_map(|(k, v)| {
            match k.as_ref() {
                "sslmode" => mode = v.to_string(),
                "sslrootcert" => root = Some(v.to_string()),
                other if LIBPQ_ONLY.contains(&other) => {}
                _ => return Some((k.to_string(), v.to_string())),
            }
            None
        })
        .collect();
    u.set_query(None);
    if !kept.is_empty() {
        u.query_pairs_mut().extend_pairs(kept);
    }
    let mut config: tokio_postgres::Config = u.as_str().parse()?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = || {
        rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
    };
    let verified = |root: Option<&str>| -> anyhow::Result<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        match root {
            Some(path) => {
                for cert in CertificateDer::pem_file_iter(path)
                    .map_err(|e| anyhow::anyhow!("DATABASE_URL: sslrootcert {path}: {e}"))?
                {
                    roots.add(cert?)?;
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        Ok(builder()?
            .with_root_certificates(roots)
            .with_no_client_auth())
    };
    let tls = match mode.as_str() {
        "disable" | "allow" => {
            config.ssl_mode(SslMode::Disable);
            None
        }
        "prefer" | "require" => {
            config.ssl_mode(if mode == "prefer" {
                SslMode::Prefer
            } else {
                SslMode::Require
            });
            Some(match root.as_deref() {
                Some(r) => verified(Some(r))?,
                None => builder()?
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider.clone())))
                    .with_no_client_auth(),
            })
        }
        "verify-ca" | "verify-full" => {
            config.ssl_mode(SslMode::Require);
            Some(verified(root.as_deref())?)
        }
        other => anyhow::bail!("DATABASE_URL: sslmode={other} is not a libpq sslmode"),
    };
    Ok((config, tls))
}

/// Connects as [`parse`] says; the returned task drives the connection, forwarding
/// notifications to `tx`, until it ends.
pub(super) async fn connect(
    url: &str,
    tx: mpsc::UnboundedSender<()>,
) -> anyhow::Result<(Client, JoinHandle<()>)> {
    let (config, tls) = parse(url)?;
    Ok(match tls {
        None => {
            let (client, conn) = config.connect(NoTls).await?;
            (client, tokio::spawn(drive(conn, tx)))
        }
        Some(tls) => {
            let connector = tokio_postgres_rustls::MakeRustlsConnect::new(tls);
            let (client, conn) = config.connect(connector).await?;
            (client, tokio::spawn(drive(conn, tx)))
        }
    })
}

/// Polls a connection, forwarding notifications, until it ends.
pub(super) async fn drive<S, T>(
    mut connection: tokio_postgres::Connection<S, T>,
    tx: mpsc::UnboundedSender<()>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        match futures_util::future::poll_fn(|cx| connection.poll_message(cx)).await {
            Some(Ok(AsyncMessage::Notification(_))) => {
                let _ = tx.send(());
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                tracing::warn!(error = %e, "worker database session failed");
                break;
            }
            None => break,
        }
    }
}

/// libpq's `require` without a root certificate: encrypted, the certificate not checked
/// (signatures still are, so the handshake is sound).
#[derive(Debug)]
struct EncryptOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
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
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_decides_whether_tls_is_used() {
        let base = "postgres://u@db.example:5432/signoff";
        let (c, tls) = parse(&format!("{base}?sslmode=disable")).unwrap();
        assert!(tls.is_none());
        assert_eq!(c.get_ssl_mode(), SslMode::Disable);
        let (c, tls) = parse(&format!("{base}?sslmode=require&application_name=x")).unwrap();
        assert!(tls.is_some());
        assert_eq!(c.get_ssl_mode(), SslMode::Require);
        assert_eq!(c.get_application_name(), Some("x"));
        let (c, tls) = parse(&format!("{base}?sslmode=verify-full")).unwrap();
        assert!(tls.is_some());
        assert_eq!(c.get_ssl_mode(), SslMode::Require);
        let (c, tls) = parse(base).unwrap();
        assert!(tls.is_some(), "libpq's default is prefer");
        assert_eq!(c.get_ssl_mode(), SslMode::Prefer);
        assert!(parse(&format!("{base}?sslmode=sometimes")).is_err());
        assert!(
            parse(&format!(
                "{base}?sslmode=verify-ca&sslrootcert=/nonexistent.pem"
            ))
            .is_err()
        );
    }
}
