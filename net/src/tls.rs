//! Identities, certificates and the two pinned-key verifiers.
//!
//! Certificates are self-signed and carry the node's Ed25519 key; their names, validity dates
//! and self-signature are not consulted. What authenticates a peer is that (a) the key in its
//! certificate is the one we expect and (b) it signed the TLS 1.3 handshake transcript with
//! that key, checked with the provider's signature algorithms. Session resumption is disabled
//! on both sides so every connection proves possession of the key afresh.

use std::fmt;
use std::sync::Arc;

use ed25519_dalek::pkcs8::EncodePrivateKey;
use ed25519_dalek::{SigningKey, VerifyingKey};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};

use crate::error::Error;

/// Name the dialer puts in the TLS server name indication. It is not checked: the server is
/// authenticated by its pinned key.
pub(crate) const SERVER_NAME: &str = "shoji";

/// DER prefix of an Ed25519 `SubjectPublicKeyInfo` (RFC 8410); the 32 key bytes follow.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// A node's identity: its Ed25519 signing key and the self-signed certificate built from it.
pub struct Identity {
    verifying_key: VerifyingKey,
    cert: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
    /// Key of the QUIC stateless-reset tokens, derived from the signing key (see
    /// [`Identity::stateless_reset_key`]).
    reset_key: [u8; 32],
    /// Key of the connection-id generator, derived from the signing key.
    cid_key: u64,
}

impl Identity {
    /// Builds the self-signed certificate whose subject public key is `signing_key`'s public
    /// key.
    pub fn new(signing_key: &SigningKey) -> Result<Identity, Error> {
        let pkcs8 = signing_key
            .to_pkcs8_der()
            .map_err(|e| Error::Tls(format!("pkcs8 encoding: {e}")))?;
        let key = PrivatePkcs8KeyDer::from(pkcs8.as_bytes().to_vec());
        let key_pair = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&key, &rcgen::PKCS_ED25519)
            .map_err(|e| Error::Tls(format!("key pair: {e}")))?;
        let params = rcgen::CertificateParams::new(vec![SERVER_NAME.to_string()])
            .map_err(|e| Error::Tls(format!("certificate parameters: {e}")))?;
        let cert = params
            .self_signed(&key_pair)
            .map_err(|e| Error::Tls(format!("self-signing: {e}")))?;
        let derive = |label: &[u8]| {
            let tag = ring::hmac::sign(
                &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, signing_key.as_bytes()),
                label,
            );
            let mut out = [0u8; 32];
            out.copy_from_slice(tag.as_ref());
            out
        };
        let reset_key = derive(b"shoji quic stateless reset key v1");
        let cid = derive(b"shoji quic connection id key v1");
        let cid_key = u64::from_le_bytes([
            cid[0], cid[1], cid[2], cid[3], cid[4], cid[5], cid[6], cid[7],
        ]);
        Ok(Identity {
            verifying_key: signing_key.verifying_key(),
            cert: cert.der().clone(),
            key,
            reset_key,
            cid_key,
        })
    }

    /// The public key this identity presents.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.verifying_key
    }

    /// The QUIC endpoint configuration of this identity. Its stateless-reset key and the key
    /// of its connection-id generator are derived from the signing key, so they survive a
    /// restart: when a validator restarts, the packets its peers still send on their
    /// connections to the old process carry connection ids the new process recognizes as its
    /// own, are answered with stateless resets those peers accept, and the peers redial at once
    /// instead of writing into a dead connection until the idle timeout.
    pub(crate) fn endpoint_config(&self) -> quinn::EndpointConfig {
        let mut config = quinn::EndpointConfig::new(std::sync::Arc::new(ring::hmac::Key::new(
            ring::hmac::HMAC_SHA256,
            &self.reset_key,
        )));
        let cid_key = self.cid_key;
        config.cid_generator(move || {
            Box::new(quinn_proto::HashedConnectionIdGenerator::from_key(cid_key))
        });
        config
    }

    /// The DER-encoded self-signed certificate.
    pub fn certificate(&self) -> &CertificateDer<'static> {
        &self.cert
    }

    fn private_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(self.key.clone_key())
    }
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Identity {
            verifying_key: self.verifying_key,
            cert: self.cert.clone(),
            key: self.key.clone_key(),
            reset_key: self.reset_key,
            cid_key: self.cid_key,
        }
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("verifying_key", &self.verifying_key)
            .finish_non_exhaustive()
    }
}

/// The Ed25519 key bytes of a certificate, if it carries an Ed25519 key.
pub(crate) fn ed25519_key_of(cert: &CertificateDer<'_>) -> Result<[u8; 32], rustls::Error> {
    let parsed = ParsedCertificate::try_from(cert)?;
    let spki = parsed.subject_public_key_info();
    let spki = spki.as_ref();
    match spki.strip_prefix(&ED25519_SPKI_PREFIX[..]) {
        Some(key) => <[u8; 32]>::try_from(key)
            .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding)),
        None => Err(rustls::Error::InvalidCertificate(
            CertificateError::ApplicationVerificationFailure,
        )),
    }
}

/// The crypto provider used everywhere: *ring*, TLS 1.3 only.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls_err(e: impl fmt::Display) -> Error {
    Error::Tls(e.to_string())
}

fn check_single(intermediates: &[CertificateDer<'_>]) -> Result<(), rustls::Error> {
    if intermediates.is_empty() {
        Ok(())
    } else {
        Err(rustls::Error::InvalidCertificate(
            CertificateError::ApplicationVerificationFailure,
        ))
    }
}

fn tls12_refused() -> Result<HandshakeSignatureValid, rustls::Error> {
    // QUIC mandates TLS 1.3 and the configurations enable nothing else.
    Err(rustls::Error::PeerIncompatible(
        rustls::PeerIncompatible::Tls13RequiredForQuic,
    ))
}

/// Accepts exactly one server key: the one pinned for the peer being dialed.
#[derive(Debug)]
pub(crate) struct PinnedServerVerifier {
    expected: [u8; 32],
    algs: WebPkiSupportedAlgorithms,
}

impl PinnedServerVerifier {
    pub(crate) fn new(expected: &VerifyingKey, provider: &CryptoProvider) -> Self {
        PinnedServerVerifier {
            expected: expected.to_bytes(),
            algs: provider.signature_verification_algorithms,
        }
    }
}

impl ServerCertVerifier for PinnedServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        check_single(intermediates)?;
        if ed25519_key_of(end_entity)? == self.expected {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        tls12_refused()
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

/// Accepts client certificates whose key belongs to the validator set. Clients without a
/// certificate are let through the handshake; the endpoint only serves them the client protocol.
#[derive(Debug)]
pub(crate) struct ValidatorClientVerifier {
    members: crate::validator::Members,
    algs: WebPkiSupportedAlgorithms,
}

impl ValidatorClientVerifier {
    pub(crate) fn new(members: crate::validator::Members, provider: &CryptoProvider) -> Self {
        ValidatorClientVerifier {
            members,
            algs: provider.signature_verification_algorithms,
        }
    }
}

impl ClientCertVerifier for ValidatorClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        check_single(intermediates)?;
        let key = ed25519_key_of(end_entity)?;
        let known = self
            .members
            .read()
            .map(|m| m.contains_key(&key))
            .unwrap_or(false);
        if known {
            Ok(ClientCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        tls12_refused()
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

/// TLS configuration of a validator's listening side: our certificate, both ALPNs, optional
/// client certificates checked against the validator set.
pub(crate) fn server_config(
    identity: &Identity,
    members: crate::validator::Members,
) -> Result<rustls::ServerConfig, Error> {
    let provider = provider();
    let verifier = Arc::new(ValidatorClientVerifier::new(members, &provider));
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_err)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![identity.cert.clone()], identity.private_key())
        .map_err(tls_err)?;
    config.alpn_protocols = vec![crate::ALPN_PEER.to_vec(), crate::ALPN_CLIENT.to_vec()];
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(config)
}

/// TLS configuration of a dialer that expects `server_key`; with `identity`, it presents a
/// validator certificate (peer protocol), without, it is a client.
pub(crate) fn client_config(
    server_key: &VerifyingKey,
    identity: Option<&Identity>,
) -> Result<rustls::ClientConfig, Error> {
    let provider = provider();
    let verifier = Arc::new(PinnedServerVerifier::new(server_key, &provider));
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_err)?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let (mut config, alpn) = match identity {
        Some(id) => (
            builder
                .with_client_auth_cert(vec![id.cert.clone()], id.private_key())
                .map_err(tls_err)?,
            crate::ALPN_PEER,
        ),
        None => (builder.with_no_client_auth(), crate::ALPN_CLIENT),
    };
    config.alpn_protocols = vec![alpn.to_vec()];
    config.resumption = rustls::client::Resumption::disabled();
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_carries_the_ed25519_key() {
        let sk = SigningKey::from_bytes(&[7u8; 32]);
        let id = Identity::new(&sk).unwrap();
        assert_eq!(
            ed25519_key_of(id.certificate()).unwrap(),
            sk.verifying_key().to_bytes()
        );
    }

    #[test]
    fn garbage_certificate_is_an_error_not_a_panic() {
        let cert = CertificateDer::from(vec![0x30, 0x03, 0x01, 0x01, 0xff]);
        assert!(ed25519_key_of(&cert).is_err());
    }
}
