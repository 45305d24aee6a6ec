//! Certificates and keys: listener certificates (rustls) and upstream TLS (Pingora types).

use std::sync::Arc;

use agora_proto::resource as pb;

use crate::backend::UpstreamTls;

pub(super) fn certified_key(
    cert: &[u8],
    key: &[u8],
) -> std::result::Result<rustls::sign::CertifiedKey, String> {
    let certs = rustls_pemfile::certs(&mut &cert[..])
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| format!("certificate PEM: {e}"))?;
    if certs.is_empty() {
        return Err("no certificate in the certificate PEM".into());
    }
    let key = rustls_pemfile::private_key(&mut &key[..])
        .map_err(|e| format!("key PEM: {e}"))?
        .ok_or("no private key in the key PEM")?;
    let signer = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| format!("unsupported private key: {e}"))?;
    let ck = rustls::sign::CertifiedKey::new(certs, signer);
    // A renewal written in two steps must not serve a key that does not match the cert.
    ck.keys_match()
        .map_err(|e| format!("the private key does not match the certificate: {e}"))?;
    Ok(ck)
}

pub(super) fn upstream_tls(t: &pb::UpstreamTls) -> std::result::Result<UpstreamTls, String> {
    use pingora::utils::tls::{CertKey, WrappedX509, parse_x509};
    let der_certs = |pem: &[u8], what: &str| {
        rustls_pemfile::certs(&mut &pem[..])
            .map(|c| c.map(|c| c.to_vec()))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| format!("{what} PEM: {e}"))
    };
    let ca = if t.ca_pem.is_empty() {
        None
    } else {
        let certs = der_certs(&t.ca_pem, "CA")?;
        if certs.is_empty() {
            return Err("no certificate in the CA PEM".into());
        }
        for c in &certs {
            x509_ok(c)?;
        }
        let wrapped: Vec<WrappedX509> = certs
            .into_iter()
            .map(|c| WrappedX509::new(c, parse_x509))
            .collect();
        Some(Arc::from(wrapped.into_boxed_slice()))
    };
    let client_cert = if t.client_cert_pem.is_empty() {
        None
    } else {
        let certs = der_certs(&t.client_cert_pem, "client certificate")?;
        if certs.is_empty() {
            return Err("no certificate in the client certificate PEM".into());
        }
        for c in &certs {
            x509_ok(c)?;
        }
        let key = rustls_pemfile::private_key(&mut &t.client_key_pem[..])
            .map_err(|e| format!("client key PEM: {e}"))?
            .ok_or("client certificate needs a client key")?;
        Some(Arc::new(CertKey::new(certs, key.secret_der().to_vec())))
    };
    Ok(UpstreamTls {
        sni: (!t.sni.is_empty()).then(|| t.sni.clone()),
        ca,
        client_cert,
        verify: !t.insecure_skip_verify,
        http2: t.http2,
    })
}

/// Pingora's x509 wrapper panics on unparsable DER; check it first.
fn x509_ok(der: &[u8]) -> std::result::Result<(), String> {
    x509_parser::parse_x509_certificate(der)
        .map(|_| ())
        .map_err(|e| format!("invalid X.509 certificate: {e}"))
}
