//! Development PKI for `sluis certs dev` and first start: a throw-away CA, the connector's key
//! and certificate, and one example consumer. Never for production: keys are written
//! unencrypted and the CA key sits next to the certificates it signed.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
    SubjectKeyIdentifier,
};
use openssl::x509::{X509, X509Builder, X509Name, X509NameBuilder};

use crate::auth::PartyId;

const RSA_BITS: u32 = 2048;
const VALIDITY_DAYS: u32 = 365;
/// Backdated so a peer whose clock runs a little behind does not see "not yet valid".
const BACKDATE_SECS: i64 = 300;
const ORGANISATION: &str = "Sluis development";

/// Where [`generate`] put everything.
#[derive(Debug, Clone)]
pub struct DevCerts {
    /// Folder to configure as `[auth] trust_anchors`; holds `dev-ca.pem`.
    pub trust_dir: PathBuf,
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    pub connector_key: PathBuf,
    pub connector_cert: PathBuf,
    pub consumer_key: PathBuf,
    pub consumer_cert: PathBuf,
    /// False when an existing `connector.key` was kept (tokens signed with it stay valid).
    pub connector_key_created: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum DevCertError {
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path} exists but is not an RSA private key of at least {RSA_BITS} bits")]
    ExistingKeyInvalid { path: PathBuf },
    #[error("OpenSSL failed while making development certificates: {0}")]
    OpenSsl(#[from] ErrorStack),
}

/// Writes a development PKI into `out_dir`:
/// `trust/dev-ca.pem` + `dev-ca.key` (the CA), `connector.key` + `connector.pem` (TLS server
/// for localhost/127.0.0.1/::1 and client; subject serialNumber = `connector`),
/// `consumer.key` + `consumer.pem` (client certificate; serialNumber = `consumer`).
///
/// Everything is regenerated except an existing `connector.key`, which is kept so that a
/// key created by [`ensure_connector_key`] on first start and this command agree.
pub fn generate(
    out_dir: &Path,
    connector: &PartyId,
    consumer: &PartyId,
) -> Result<DevCerts, DevCertError> {
    let trust_dir = out_dir.join("trust");
    fs::create_dir_all(&trust_dir).map_err(|source| DevCertError::Write {
        path: trust_dir.clone(),
        source,
    })?;
    let paths = DevCerts {
        ca_cert: trust_dir.join("dev-ca.pem"),
        trust_dir,
        ca_key: out_dir.join("dev-ca.key"),
        connector_key: out_dir.join("connector.key"),
        connector_cert: out_dir.join("connector.pem"),
        consumer_key: out_dir.join("consumer.key"),
        consumer_cert: out_dir.join("consumer.pem"),
        connector_key_created: false,
    };

    let ca_key = new_rsa_key()?;
    let ca_name = name("Sluis development CA", None)?;
    let ca = build_cert(&ca_name, &ca_key, None, Profile::Ca)?;
    write_private_key(&paths.ca_key, &ca_key)?;
    write_file(&paths.ca_cert, &ca.to_pem()?, false)?;

    let connector_key_created = ensure_connector_key(&paths.connector_key)?;
    let connector_key = read_rsa_key(&paths.connector_key)?;
    let connector_cert = build_cert(
        &name("localhost", Some(connector))?,
        &connector_key,
        Some((&ca, &ca_key)),
        Profile::Connector,
    )?;
    write_file(&paths.connector_cert, &connector_cert.to_pem()?, false)?;

    let consumer_key = new_rsa_key()?;
    let consumer_cert = build_cert(
        &name("Sluis example consumer", Some(consumer))?,
        &consumer_key,
        Some((&ca, &ca_key)),
        Profile::Consumer,
    )?;
    write_private_key(&paths.consumer_key, &consumer_key)?;
    write_file(&paths.consumer_cert, &consumer_cert.to_pem()?, false)?;

    Ok(DevCerts {
        connector_key_created,
        ..paths
    })
}

/// Makes sure the connector's signing key exists at `path`, creating a 2048-bit RSA key
/// (PKCS#8 PEM, mode 0600) when it is missing. Returns whether it was created. An existing
/// file must be a usable RSA key: silently replacing it would invalidate issued tokens.
pub fn ensure_connector_key(path: &Path) -> Result<bool, DevCertError> {
    if path.exists() {
        read_rsa_key(path)?;
        return Ok(false);
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(|source| DevCertError::Write {
            path: parent.to_owned(),
            source,
        })?;
    }
    let pem = new_rsa_key()?.private_key_to_pem_pkcs8()?;
    match write_file(path, &pem, true) {
        Ok(()) => Ok(true),
        // Another replica won the race between exists() and create: use its key.
        Err(DevCertError::Write { source, .. })
            if source.kind() == io::ErrorKind::AlreadyExists =>
        {
            read_rsa_key(path)?;
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

#[derive(Clone, Copy)]
enum Profile {
    Ca,
    /// Our own certificate: TLS server on loopback, and client when we call other connectors.
    Connector,
    Consumer,
}

fn new_rsa_key() -> Result<PKey<Private>, ErrorStack> {
    PKey::from_rsa(Rsa::generate(RSA_BITS)?)
}

fn read_rsa_key(path: &Path) -> Result<PKey<Private>, DevCertError> {
    let pem = fs::read(path).map_err(|source| DevCertError::Read {
        path: path.to_owned(),
        source,
    })?;
    let invalid = || DevCertError::ExistingKeyInvalid {
        path: path.to_owned(),
    };
    let key = PKey::private_key_from_pem(&pem).map_err(|_| invalid())?;
    let rsa = key.rsa().map_err(|_| invalid())?;
    if rsa.size() * 8 < RSA_BITS {
        return Err(invalid());
    }
    Ok(key)
}

fn name(common_name: &str, party: Option<&PartyId>) -> Result<X509Name, ErrorStack> {
    let mut builder = X509NameBuilder::new()?;
    builder.append_entry_by_nid(Nid::COUNTRYNAME, "NL")?;
    builder.append_entry_by_nid(Nid::ORGANIZATIONNAME, ORGANISATION)?;
    if let Some(party) = party {
        // Where iSHARE and PKIoverheid certificates carry the organisation identifier.
        builder.append_entry_by_nid(Nid::SERIALNUMBER, party.as_str())?;
    }
    builder.append_entry_by_nid(Nid::COMMONNAME, common_name)?;
    Ok(builder.build())
}

fn random_serial() -> Result<Asn1Integer, ErrorStack> {
    // 127 random bits: positive, unique in practice, within RFC 5280's 20-octet limit.
    let mut serial = BigNum::new()?;
    serial.rand(127, MsbOption::MAYBE_ZERO, false)?;
    serial.to_asn1_integer()
}

fn build_cert(
    subject: &X509Name,
    key: &PKey<Private>,
    issuer: Option<(&X509, &PKey<Private>)>,
    profile: Profile,
) -> Result<X509, ErrorStack> {
    let mut builder = X509Builder::new()?;
    builder.set_version(2)?;
    let serial = random_serial()?;
    builder.set_serial_number(&serial)?;
    builder.set_subject_name(subject)?;
    builder.set_issuer_name(issuer.map_or(subject, |(cert, _)| cert.subject_name()))?;
    builder.set_pubkey(key)?;
    let not_before = Asn1Time::from_unix(chrono::Utc::now().timestamp() - BACKDATE_SECS)?;
    builder.set_not_before(&not_before)?;
    let not_after = Asn1Time::days_from_now(VALIDITY_DAYS)?;
    builder.set_not_after(&not_after)?;

    match profile {
        Profile::Ca => {
            builder.append_extension(BasicConstraints::new().critical().ca().build()?)?;
            builder.append_extension(
                KeyUsage::new()
                    .critical()
                    .key_cert_sign()
                    .crl_sign()
                    .build()?,
            )?;
        }
        Profile::Connector => {
            builder.append_extension(BasicConstraints::new().critical().build()?)?;
            builder.append_extension(
                KeyUsage::new()
                    .critical()
                    .digital_signature()
                    .key_encipherment()
                    .build()?,
            )?;
            builder.append_extension(
                ExtendedKeyUsage::new()
                    .server_auth()
                    .client_auth()
                    .build()?,
            )?;
            let san = SubjectAlternativeName::new()
                .dns("localhost")
                .ip(&IpAddr::V4(Ipv4Addr::LOCALHOST).to_string())
                .ip(&IpAddr::V6(Ipv6Addr::LOCALHOST).to_string())
                .build(&builder.x509v3_context(issuer.map(|(cert, _)| cert.as_ref()), None))?;
            builder.append_extension(san)?;
        }
        Profile::Consumer => {
            builder.append_extension(BasicConstraints::new().critical().build()?)?;
            builder.append_extension(KeyUsage::new().critical().digital_signature().build()?)?;
            builder.append_extension(ExtendedKeyUsage::new().client_auth().build()?)?;
        }
    }
    let ski = SubjectKeyIdentifier::new()
        .build(&builder.x509v3_context(issuer.map(|(cert, _)| cert.as_ref()), None))?;
    builder.append_extension(ski)?;
    if let Some((issuer_cert, _)) = issuer {
        let aki = AuthorityKeyIdentifier::new()
            .keyid(true)
            .build(&builder.x509v3_context(Some(issuer_cert), None))?;
        builder.append_extension(aki)?;
    }

    let signing_key = issuer.map_or(key, |(_, issuer_key)| issuer_key);
    builder.sign(signing_key, MessageDigest::sha256())?;
    Ok(builder.build())
}

fn write_private_key(path: &Path, key: &PKey<Private>) -> Result<(), DevCertError> {
    write_file(path, &key.private_key_to_pem_pkcs8()?, false)?;
    restrict(path)
}

/// Writes `contents` to `path`. Keys are created with mode 0600 on Unix; with `create_new`
/// an existing file is an `AlreadyExists` error instead of being overwritten.
fn write_file(path: &Path, contents: &[u8], create_new: bool) -> Result<(), DevCertError> {
    let mut options = OpenOptions::new();
    options.write(true);
    if create_new {
        options.create_new(true);
    } else {
        options.create(true).truncate(true);
    }
    #[cfg(unix)]
    if path.extension().is_some_and(|ext| ext == "key") {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let wrap = |source| DevCertError::Write {
        path: path.to_owned(),
        source,
    };
    let mut file = options.open(path).map_err(wrap)?;
    file.write_all(contents).map_err(wrap)?;
    file.sync_all().map_err(wrap)
}

/// `mode` only applies when a file is created; an older key file keeps its permissions
/// unless we tighten them explicitly.
fn restrict(path: &Path) -> Result<(), DevCertError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(|source| {
            DevCertError::Write {
                path: path.to_owned(),
                source,
            }
        })?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}
