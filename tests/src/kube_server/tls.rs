//! TLS: a CA generated when the server starts (rcgen), a serving certificate for the
//! loopback names, and client certificates for users (CN = user, O = groups), all with
//! rustls and its `ring` provider. Client certificates are optional: a client without
//! one authenticates with a bearer token instead.

use std::sync::Arc;

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio_rustls::TlsAcceptor;

/// A client certificate and its key, PEM.
#[derive(Debug, Clone)]
pub struct ClientCertificate {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: Vec<u8>,
}

pub struct Authority {
    ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
    acceptor: TlsAcceptor,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority").finish_non_exhaustive()
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl Authority {
    /// A new CA and a serving certificate for `hosts` (IP addresses or DNS names).
    pub fn generate(hosts: &[String]) -> anyhow::Result<Authority> {
        let ca_key = KeyPair::generate().context("cannot generate the CA key")?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "kube-test-server-ca");
        ca_params.distinguished_name = dn;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params
            .self_signed(&ca_key)
            .context("cannot sign the CA certificate")?;
        let issuer = Issuer::new(ca_params, ca_key);

        let server_key = KeyPair::generate()?;
        let mut params = CertificateParams::new(hosts.to_vec())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "kube-apiserver");
        params.distinguished_name = dn;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = params
            .signed_by(&server_key, &issuer)
            .context("cannot sign the serving certificate")?;

        let mut roots = RootCertStore::empty();
        roots.add(ca_cert.der().clone())?;
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
            .allow_unauthenticated()
            .build()
            .context("cannot build the client certificate verifier")?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der()));
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![server_cert.der().clone()], key)
            .context("cannot use the serving certificate")?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Authority {
            ca_pem: ca_cert.pem(),
            issuer,
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }

    /// The CA certificate, PEM (a kubeconfig's `certificate-authority-data`).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    pub fn acceptor(&self) -> TlsAcceptor {
        self.acceptor.clone()
    }

    /// A client certificate for `user` in `groups`.
    pub fn client_certificate(
        &self,
        user: &str,
        groups: &[&str],
    ) -> anyhow::Result<ClientCertificate> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, user);
        for group in groups {
            dn.push(DnType::OrganizationName, *group);
        }
        params.distinguished_name = dn;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params
            .signed_by(&key, &self.issuer)
            .context("cannot sign a client certificate")?;
        Ok(ClientCertificate {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: CertificateDer::from(cert.der().to_vec()).to_vec(),
        })
    }
}
