//! Certificates for `tls:` tests, made by rcgen at test time and written as PEM files.

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

use super::TempDir;

/// A CA whose certificate is `DIR/NAME-ca.pem`, and the certificates it signs.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
    pub ca: String,
}

impl Ca {
    pub fn new(dir: &TempDir, name: &str) -> Ca {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(
            rcgen::DnType::CommonName,
            format!("ipcx cli test CA {name}"),
        );
        let issuer = CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap();
        let ca = dir.join(&format!("{name}-ca.pem"));
        std::fs::write(&ca, issuer.pem()).unwrap();
        Ca { issuer, ca }
    }

    /// A certificate for `names` signed by this CA: the paths of its PEM certificate and key.
    pub fn leaf(&self, dir: &TempDir, file: &str, names: &[&str]) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &self.issuer)
            .unwrap();
        let (c, k) = (
            dir.join(&format!("{file}.pem")),
            dir.join(&format!("{file}.key")),
        );
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (c, k)
    }
}
