// SPDX-License-Identifier: MIT
// Certificates for the TLS tests, generated with the OpenSSL API into a temporary directory the
// first time a test asks (P-256 keys: milliseconds), and removed when the test process exits.
#pragma once

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>

namespace corio::test {

/// The test PKI: a CA the tests trust, and server certificates for every case of the matrix.
/// Every leaf uses the key in `leaf_key`.
struct test_pki {
    std::string dir;
    std::string ca;          // the trusted CA
    std::string leaf_key;    // key of every leaf below
    std::string good;        // CA-signed, DNS:localhost and IP:127.0.0.1, valid now
    std::string expired;     // CA-signed, valid for a day in 2020
    std::string wrong_host;  // CA-signed, DNS:wrong.host.test only
    std::string self_signed; // DNS:localhost and IP:127.0.0.1, signed by its own key
    std::string untrusted;   // signed by another CA nobody trusts
};

namespace pki_detail {

using key_ptr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using cert_ptr = std::unique_ptr<X509, decltype(&X509_free)>;

inline void check(bool ok, const char* what) {
    if (!ok)
        throw std::runtime_error(std::string("test PKI: ") + what + " failed");
}

inline key_ptr new_key() {
    key_ptr key{EVP_EC_gen("P-256"), &EVP_PKEY_free};
    check(key != nullptr, "EC key generation");
    return key;
}

inline void add_extension(X509* cert, X509* issuer, int nid, const char* value) {
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    check(ext != nullptr, "certificate extension");
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
}

/// A certificate for `key` named `cn`, signed by `issuer_key` (and named by `issuer`, or by
/// itself when null), valid from `from` to `to` seconds relative to now.
inline cert_ptr make_cert(EVP_PKEY* key, const char* cn, const char* san, X509* issuer,
                          EVP_PKEY* issuer_key, long from, long to, bool ca, long serial) {
    cert_ptr cert{X509_new(), &X509_free};
    X509_set_version(cert.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), from);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), to);
    X509_set_pubkey(cert.get(), key);
    X509_NAME* name = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn),
                               -1, -1, 0);
    X509* signer = issuer != nullptr ? issuer : cert.get();
    X509_set_issuer_name(cert.get(), X509_get_subject_name(signer));
    if (ca) {
        add_extension(cert.get(), signer, NID_basic_constraints, "critical,CA:TRUE");
        add_extension(cert.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        add_extension(cert.get(), signer, NID_basic_constraints, "critical,CA:FALSE");
        add_extension(cert.get(), signer, NID_ext_key_usage, "serverAuth");
        add_extension(cert.get(), signer, NID_subject_alt_name, san);
    }
    add_extension(cert.get(), signer, NID_subject_key_identifier, "hash");
    check(X509_sign(cert.get(), issuer_key, EVP_sha256()) > 0, "signing");
    return cert;
}

inline void write_cert(const std::string& path, X509* cert) {
    FILE* f = std::fopen(path.c_str(), "w");
    check(f != nullptr, "opening a certificate file");
    const int ok = PEM_write_X509(f, cert);
    std::fclose(f);
    check(ok == 1, "writing a certificate");
}

inline void write_key(const std::string& path, EVP_PKEY* key) {
    FILE* f = std::fopen(path.c_str(), "w");
    check(f != nullptr, "opening a key file");
    const int ok = PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
    std::fclose(f);
    check(ok == 1, "writing a key");
}

inline test_pki generate() {
    char dir_template[] = "/tmp/corio-pki-XXXXXX";
    check(::mkdtemp(dir_template) != nullptr, "mkdtemp");
    test_pki p;
    p.dir = dir_template;
    const auto path = [&](const char* name) { return p.dir + "/" + name; };
    p.ca = path("ca.pem");
    p.leaf_key = path("leaf.key");
    p.good = path("good.pem");
    p.expired = path("expired.pem");
    p.wrong_host = path("wrong_host.pem");
    p.self_signed = path("self_signed.pem");
    p.untrusted = path("untrusted.pem");

    constexpr long day = 24 * 3600;
    const char* const local = "DNS:localhost,IP:127.0.0.1";
    const key_ptr ca_key = new_key();
    const key_ptr other_ca_key = new_key();
    const key_ptr leaf_key = new_key();
    const cert_ptr ca = make_cert(ca_key.get(), "corio test CA", nullptr, nullptr, ca_key.get(),
                                  -day, 2 * day, true, 1);
    const cert_ptr other_ca = make_cert(other_ca_key.get(), "corio untrusted CA", nullptr, nullptr,
                                        other_ca_key.get(), -day, 2 * day, true, 2);
    // 2020-01-01 to 2020-01-02, as offsets from now.
    const long now = static_cast<long>(std::time(nullptr));
    const long since_2020 = now - 1'577'836'800L;
    write_cert(p.ca, ca.get());
    write_key(p.leaf_key, leaf_key.get());
    write_cert(p.good, make_cert(leaf_key.get(), "localhost", local, ca.get(), ca_key.get(), -day,
                                 day, false, 10)
                           .get());
    write_cert(p.expired, make_cert(leaf_key.get(), "localhost", local, ca.get(), ca_key.get(),
                                    -since_2020, -since_2020 + day, false, 11)
                              .get());
    write_cert(p.wrong_host, make_cert(leaf_key.get(), "wrong.host.test", "DNS:wrong.host.test",
                                       ca.get(), ca_key.get(), -day, day, false, 12)
                                 .get());
    write_cert(p.self_signed, make_cert(leaf_key.get(), "localhost", local, nullptr, leaf_key.get(),
                                        -day, day, false, 13)
                                  .get());
    write_cert(p.untrusted, make_cert(leaf_key.get(), "localhost", local, other_ca.get(),
                                      other_ca_key.get(), -day, day, false, 14)
                                .get());
    return p;
}

} // namespace pki_detail

/// The process's test PKI (generated on first use, deleted at exit).
inline const test_pki& pki() {
    static const test_pki p = [] {
        test_pki generated = pki_detail::generate();
        static const std::string dir = generated.dir;
        std::atexit([] {
            std::error_code ignored;
            std::filesystem::remove_all(dir, ignored);
        });
        return generated;
    }();
    return p;
}

} // namespace corio::test
